VISITS_KEY = "demo_visits"


def visit_record(*, session) -> int:
    """Count one more visit in the visitor's session and return the new total."""
    visits = session.get(VISITS_KEY, 0) + 1
    session[VISITS_KEY] = visits
    return visits
