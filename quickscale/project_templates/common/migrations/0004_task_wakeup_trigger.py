"""Wake database workers from the database itself: a trigger NOTIFYs on every enqueue.

Replaces a ``task_enqueued`` receiver that sent ``SELECT pg_notify`` after each
enqueue: one round trip less per task, and a task row written by any process
(or by hand) wakes the workers too. See ``common.task_wakeup``.
"""

from django.db import migrations

CREATE = """
CREATE FUNCTION quickscale_tasks_notify() RETURNS trigger
LANGUAGE plpgsql AS $body$
BEGIN
    -- Delivered when the enqueueing transaction commits, never for one rolled back;
    -- one notice per statement however many rows it inserted.
    PERFORM pg_notify('quickscale_tasks', '');
    RETURN NULL;
END
$body$;
CREATE TRIGGER quickscale_tasks_notify
    AFTER INSERT ON django_tasks_database_dbtaskresult
    FOR EACH STATEMENT EXECUTE FUNCTION quickscale_tasks_notify();
"""

DROP = """
DROP TRIGGER IF EXISTS quickscale_tasks_notify ON django_tasks_database_dbtaskresult;
DROP FUNCTION IF EXISTS quickscale_tasks_notify();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("common", "0003_queuedemail"),
        ("django_tasks_database", "0021_conditional_partial_index_ordering"),
    ]

    operations = [migrations.RunSQL(CREATE, reverse_sql=DROP)]
