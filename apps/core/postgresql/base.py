"""PostgreSQL with every query counted and timed, for Prometheus: Django's
engine, as django-prometheus wraps it (its django_db_* series: queries,
their durations, errors, new connections), with each query's series looked
up once per connection rather than on every query.

django-prometheus's cursor finds its two series by their labels on each
query and builds two context managers around it: about 10 µs of CPU a
query, three queries a page (the session read and write, the connection's
health check). This one binds them when the connection opens. The ENGINE
when METRICS_PORT is set (project/settings/base.py).
"""

import time

from django.db.backends.postgresql import base
from django_prometheus.db import (
    errors_total,
    execute_many_total,
    execute_total,
    query_duration_seconds,
)
from django_prometheus.db.backends.postgresql.base import (
    DatabaseWrapper as PrometheusDatabaseWrapper,
)


def timed_cursor(cursor_class, *, alias: str, vendor: str):
    """`cursor_class`, counting and timing its queries under `alias` and `vendor`."""
    executed = execute_total.labels(alias, vendor)
    executed_many = execute_many_total.labels(alias, vendor)
    duration = query_duration_seconds.labels(alias, vendor)

    class TimedCursor(cursor_class):
        def execute(self, *args, **kwargs):
            executed.inc()
            started = time.perf_counter()
            try:
                return super().execute(*args, **kwargs)
            except Exception as error:
                errors_total.labels(alias, vendor, type(error).__name__).inc()
                raise
            finally:
                duration.observe(time.perf_counter() - started)

        def executemany(self, query, params_seq, *args, **kwargs):
            # A list, counted before it runs, as django-prometheus counts it.
            params_seq = list(params_seq)
            executed.inc(len(params_seq))
            executed_many.inc(len(params_seq))
            started = time.perf_counter()
            try:
                return super().executemany(query, params_seq, *args, **kwargs)
            except Exception as error:
                errors_total.labels(alias, vendor, type(error).__name__).inc()
                raise
            finally:
                duration.observe(time.perf_counter() - started)

    return TimedCursor


class DatabaseWrapper(PrometheusDatabaseWrapper):
    """django-prometheus's (which counts new connections and their failures),
    with TimedCursor for its cursor."""

    def get_connection_params(self):
        params = base.DatabaseWrapper.get_connection_params(self)
        params["cursor_factory"] = timed_cursor(
            params["cursor_factory"], alias=self.alias, vendor=self.vendor
        )
        return params
