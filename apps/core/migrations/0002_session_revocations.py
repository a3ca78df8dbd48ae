"""Sessions deleted from PostgreSQL, by any path, are announced to the
evictor (apps/core/sessions.py, CopyEvictor), which drops their copies in
Redis: one notification per statement, with the deleted keys, or "*" for
many (a notification holds less than 8 kB) and for TRUNCATE."""

from django.db import migrations

from apps.core.sessions import NOTIFY_CHANNEL

# 200 keys of 32 characters and their spaces: 6,600 bytes.
KEYS_MAX = 200

CREATE = f"""
CREATE FUNCTION session_copies_drop() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    keys text;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        keys := '*';
    ELSE
        SELECT CASE WHEN count(*) > {KEYS_MAX} THEN '*' ELSE string_agg(session_key, ' ') END
          INTO keys FROM deleted;
    END IF;
    -- A DELETE of no row notifies nothing (NOTIFY locks the cluster at commit).
    IF keys IS NOT NULL THEN
        PERFORM pg_notify('{NOTIFY_CHANNEL}', keys);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER session_copies_drop_on_delete AFTER DELETE ON django_session
    REFERENCING OLD TABLE AS deleted
    FOR EACH STATEMENT EXECUTE FUNCTION session_copies_drop();
CREATE TRIGGER session_copies_drop_on_truncate AFTER TRUNCATE ON django_session
    FOR EACH STATEMENT EXECUTE FUNCTION session_copies_drop();
"""

DROP = """
DROP TRIGGER session_copies_drop_on_truncate ON django_session;
DROP TRIGGER session_copies_drop_on_delete ON django_session;
DROP FUNCTION session_copies_drop();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0001_initial"),
        ("sessions", "0001_initial"),
    ]

    operations = [migrations.RunSQL(CREATE, DROP)]
