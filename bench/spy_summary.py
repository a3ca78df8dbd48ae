"""Where a Gunicorn worker's CPU goes on a page, from py-spy's collapsed
stacks (bench/spy.py): the share of samples that pass through each part of
the request's path, and the functions that use the most CPU themselves."""

from collections import Counter

# (what, a piece of a frame that marks it), checked on every frame of a stack:
# a stack counts towards each part it passes through, so shares overlap
# (session saving is inside the session middleware, inside Django).
PARTS = [
    ("Django: the whole request (handler)", "django/core/handlers/"),
    ("session middleware (read, save)", "sessions/middleware.py"),
    ("session save (INSERT or UPDATE)", "sessions/backends/db.py"),
    ("CSRF middleware", "middleware/csrf.py"),
    ("authentication middleware", "auth/middleware.py"),
    ("django-axes", "axes/"),
    ("messages", "contrib/messages/"),
    ("security middleware", "middleware/security.py"),
    ("common middleware", "middleware/common.py"),
    ("template rendering", "django/template/"),
    ("URL resolving", "django/urls/"),
    ("PostgreSQL driver (psycopg)", "psycopg/"),
    ("Django's database layer", "django/db/"),
    ("logging", "logging/"),
    ("Gunicorn outside Django (parse, write, access log)", None),
]


def summary(collapsed: str, *, top: int = 12) -> dict:
    total = 0
    parts: Counter = Counter()
    self_time: Counter = Counter()
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = stack.split(";")
        for name, marker in PARTS:
            if marker is None:
                if not any("django/" in frame for frame in frames):
                    parts[name] += samples
            elif any(marker in frame for frame in frames):
                parts[name] += samples
        self_time[frames[-1]] += samples
    total = max(total, 1)
    return {
        "samples": total,
        "parts": {name: parts[name] / total for name, _ in PARTS},
        "top_self": [(frame, n / total) for frame, n in self_time.most_common(top)],
    }
