"""Signals the credits app sends, for apps above it (which ``credits`` must not import).

``available_lowered`` is sent once the transaction of a spend (a consume, or a
settle that charged something) has committed, with ``user_id`` and the
``available`` balance that spend left: None when the ledger did not compute it
(a settle within its hold, which frees the rest). A hold sends nothing: it is
an estimate, often several times what the call costs. ``stripe_manager``
listens for it to start an automatic top-up. A receiver's error is logged and
never reaches the spend, which has committed already.
"""

from __future__ import annotations

from django.dispatch import Signal

available_lowered = Signal()
