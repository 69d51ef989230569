"""Queued emails wake idle workers as an enqueued task does (``common.mail_tasks``).

The outbox row is the worker's work item, with no task row of its own, so its
table gets the trigger of the task table (``common.0004``, ``common.task_wakeup``)
and of stored Stripe events: one notice per INSERT statement, delivered when
the transaction that queued the email commits, at no extra round trip.
"""

from django.db import migrations

CREATE = """
CREATE TRIGGER common_queuedemail_notify
    AFTER INSERT ON common_queuedemail
    FOR EACH STATEMENT EXECUTE FUNCTION quickscale_tasks_notify();
"""

DROP = "DROP TRIGGER IF EXISTS common_queuedemail_notify ON common_queuedemail;"


class Migration(migrations.Migration):
    dependencies = [
        ("common", "0004_task_wakeup_trigger"),
    ]

    operations = [migrations.RunSQL(CREATE, reverse_sql=DROP)]
