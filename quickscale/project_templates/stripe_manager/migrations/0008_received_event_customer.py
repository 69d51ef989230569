"""The Stripe customer a stored event is about, read when it is received.

The worker takes the customer's advisory lock in the same statement that
takes the event (``webhooks._claim_due``), so it needs the customer before it
reads the payload. Events still waiting when this runs get theirs from their
payload, read as ``webhooks.customer_of`` reads it.
"""

from django.db import migrations, models

BACKFILL = """
UPDATE stripe_manager_receivedstripeevent SET customer_id = COALESCE(
    CASE
        WHEN payload::jsonb #>> '{data,object,object}' = 'customer'
            THEN payload::jsonb #>> '{data,object,id}'
        WHEN jsonb_typeof(payload::jsonb #> '{data,object,customer}') = 'object'
            THEN payload::jsonb #>> '{data,object,customer,id}'
        ELSE payload::jsonb #>> '{data,object,customer}'
    END, '')
WHERE state = 'pending' AND payload <> ''
"""


class Migration(migrations.Migration):
    dependencies = [("stripe_manager", "0007_received_stripe_events")]

    operations = [
        migrations.AddField(
            model_name="receivedstripeevent",
            name="customer_id",
            field=models.CharField(blank=True, default="", max_length=255),
        ),
        migrations.RunSQL(BACKFILL, reverse_sql=migrations.RunSQL.noop),
    ]
