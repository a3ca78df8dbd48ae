from apps.demo.visits import VISITS_KEY, visit_record


def test_visit_record_counts_from_one():
    session = {}
    assert [visit_record(session=session) for _ in range(3)] == [1, 2, 3]
    assert session[VISITS_KEY] == 3
