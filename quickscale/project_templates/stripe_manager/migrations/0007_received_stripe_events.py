"""Webhook events stored before they are applied (``stripe_manager.webhook_queue``).

The trigger wakes idle database workers when an event is stored, with the
notice an enqueued task sends (``common.0004``, ``common.task_wakeup``): the
event row is the worker's work item, with no task row of its own.
"""

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("stripe_manager", "0006_plan_highlight_features"),
        ("common", "0004_task_wakeup_trigger"),
    ]

    operations = [
        migrations.CreateModel(
            name="ReceivedStripeEvent",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("event_id", models.CharField(max_length=255, unique=True)),
                ("event_type", models.CharField(max_length=100)),
                ("payload", models.TextField()),
                (
                    "state",
                    models.CharField(
                        choices=[
                            ("pending", "Pending"),
                            ("processed", "Processed"),
                            ("failed", "Failed (given up)"),
                        ],
                        default="pending",
                        max_length=20,
                    ),
                ),
                ("attempts", models.PositiveIntegerField(default=0)),
                ("received_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("next_attempt_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("processed_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "indexes": [
                    models.Index(
                        condition=models.Q(("state", "pending")),
                        fields=["next_attempt_at", "id"],
                        name="stripe_event_pending_due",
                    )
                ],
            },
        ),
        migrations.RunSQL(
            """
            CREATE TRIGGER stripe_event_received_notify
                AFTER INSERT ON stripe_manager_receivedstripeevent
                FOR EACH STATEMENT EXECUTE FUNCTION quickscale_tasks_notify();
            """,
            reverse_sql=(
                "DROP TRIGGER IF EXISTS stripe_event_received_notify "
                "ON stripe_manager_receivedstripeevent;"
            ),
        ),
    ]
