"""A NOTIFY on every new task, so an idle worker starts it at once rather
than at its next poll (apps/core/tasks/worker.py). PostgreSQL delivers a
notification when the transaction that sent it commits, and never if it
rolls back: a worker is woken for tasks it can see. One per statement, not
per row; the payload is empty, since the worker claims whatever is ready."""

from django.db import migrations

TABLE = "django_tasks_database_dbtaskresult"
CHANNEL = "tasks_enqueued"  # apps.core.tasks.worker.NOTIFY_CHANNEL

CREATE = f"""
CREATE FUNCTION tasks_enqueued_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', '');
    RETURN NULL;
END $$;
CREATE TRIGGER tasks_enqueued_notify AFTER INSERT ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION tasks_enqueued_notify();
"""
DROP = f"""
DROP TRIGGER IF EXISTS tasks_enqueued_notify ON {TABLE};
DROP FUNCTION IF EXISTS tasks_enqueued_notify();
"""


def sql_on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0001_initial"),
        ("django_tasks_database", "0021_conditional_partial_index_ordering"),
    ]

    operations = [
        migrations.RunPython(sql_on_postgresql(CREATE), sql_on_postgresql(DROP), elidable=False),
    ]
