"""Settings modules, one per way of running the project.

- base.py: what every environment shares, read top to bottom.
- dev.py: `python manage.py runserver` in a virtualenv (manage.py's default).
- production.py: the image (wsgi.py's and asgi.py's default). Fails closed.
- test.py: pytest, against the real PostgreSQL and Redis of the compose stack.
"""
