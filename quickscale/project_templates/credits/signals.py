"""Signals the credits app sends, for apps above it (which ``credits`` must not import).

``available_lowered`` is sent once the transaction of a spend (a consume, a
hold, a settle above its hold) has committed, with ``user_id`` and the
``available`` balance that spend left. ``stripe_manager`` listens for it to
start an automatic top-up. A receiver's error is logged and never reaches the
spend, which has committed already.
"""

from __future__ import annotations

from django.dispatch import Signal

available_lowered = Signal()
