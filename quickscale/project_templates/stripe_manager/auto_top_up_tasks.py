"""The auto top-up's background tasks (django-tasks): the charge (it carries the charge
row's id only) and the periodic sweep the scheduler enqueues (``PERIODIC_TASKS``)."""

from __future__ import annotations

from django_tasks import task

from stripe_manager.auto_top_up import auto_top_up_charge, sweep_stalled_charges


@task()
def charge_auto_top_up(charge_id: int) -> str:
    """Charge the saved card for a queued top-up (a repeated delivery charges nothing)."""
    return auto_top_up_charge(charge_id)


@task()
def sweep_auto_top_ups() -> int:
    """Send again every top-up stuck queued or charging (its task or worker was lost), and
    settle those charged long ago whose webhook never came (asks Stripe)."""
    return sweep_stalled_charges()
