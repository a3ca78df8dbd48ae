"""PostgreSQL with every query counted and timed, for Prometheus: Django's
engine with the django_db_* series (queries, their durations, errors, new
connections: apps/core/metrics.py), each query's series looked up once per
connection rather than on every query.

django-prometheus's cursor found its two series by their labels on each
query and built two context managers around it: about 10 µs of CPU a
query, three queries a page (the session read and write, the connection's
health check). This one binds them when the connection opens. The ENGINE
when METRICS_PORT is set (project/settings/base.py).
"""

import time

from django.db.backends.postgresql import base

from apps.core.metrics import (
    db_connection_errors,
    db_connections,
    db_errors,
    db_executed,
    db_executed_many,
    db_query_duration,
)


def timed_cursor(cursor_class, *, alias: str, vendor: str):
    """`cursor_class`, counting and timing its queries under `alias` and `vendor`."""
    executed = db_executed.labels(alias, vendor)
    executed_many = db_executed_many.labels(alias, vendor)
    duration = db_query_duration.labels(alias, vendor)

    class TimedCursor(cursor_class):
        def execute(self, *args, **kwargs):
            executed.inc()
            started = time.perf_counter()
            try:
                return super().execute(*args, **kwargs)
            except Exception as error:
                db_errors.labels(alias, vendor, type(error).__name__).inc()
                raise
            finally:
                duration.observe(time.perf_counter() - started)

        def executemany(self, query, params_seq, *args, **kwargs):
            # A list, counted before it runs, as django-prometheus counted it.
            params_seq = list(params_seq)
            executed.inc(len(params_seq))
            executed_many.inc(len(params_seq))
            started = time.perf_counter()
            try:
                return super().executemany(query, params_seq, *args, **kwargs)
            except Exception as error:
                db_errors.labels(alias, vendor, type(error).__name__).inc()
                raise
            finally:
                duration.observe(time.perf_counter() - started)

    return TimedCursor


class DatabaseWrapper(base.DatabaseWrapper):
    """Django's, counting new connections and their failures, with
    TimedCursor for its cursor."""

    def get_new_connection(self, conn_params):
        db_connections.labels(self.alias, self.vendor).inc()
        try:
            return super().get_new_connection(conn_params)
        except Exception:
            db_connection_errors.labels(self.alias, self.vendor).inc()
            raise

    def get_connection_params(self):
        params = super().get_connection_params()
        params["cursor_factory"] = timed_cursor(
            params["cursor_factory"], alias=self.alias, vendor=self.vendor
        )
        return params
