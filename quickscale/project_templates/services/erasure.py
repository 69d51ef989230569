"""A deleted account's inputs leave its usage history.

The usage rows stay (credits were charged by them), but ``input_summary``
holds the start of what the user sent, which is theirs: it is blanked in the
transaction that deletes the account (``users.signals.account_deleted``).
"""

from __future__ import annotations

import logging
from typing import Any

from services.models import ServiceUsage

logger = logging.getLogger(__name__)


def erase_usage_inputs(sender: Any, *, user_id: int, **kwargs: Any) -> None:
    """Blank the input summaries of ``user_id``'s calls."""
    erased = ServiceUsage.objects.filter(user_id=user_id).exclude(input_summary="")
    count = erased.update(input_summary="")
    logger.info("usage inputs erased", extra={"user_id": user_id, "rows": count})
