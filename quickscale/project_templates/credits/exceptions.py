"""Errors raised by the credit ledger.

Callers catch these, never a database error: a repeated reference is answered
with the first result, and anything the ledger refuses raises one of the
types below having changed nothing.
"""

from __future__ import annotations

from decimal import Decimal

from common.formatting import format_credits


class CreditsError(Exception):
    """Root of every error the credit ledger raises."""


class InvalidAmount(CreditsError, ValueError):
    """Raised when an amount is not a positive, finite Decimal (or int) with at most 2 places.

    Floats are refused outright (they cannot hold money exactly), and so are
    amounts above ``credits.ledger.MAX_AMOUNT``. Callers skip the ledger for
    free things instead of passing zero.
    """


class InvalidReference(CreditsError, ValueError):
    """Raised when a reference or idempotency key is empty or longer than 255 characters."""


class InvalidSource(CreditsError, ValueError):
    """Raised when ``grant`` is given a source that is not a ``CreditLot.Source``."""


class MissingReason(CreditsError, ValueError):
    """Raised when a reversal or adjustment has no staff-facing reason."""


class InsufficientCredits(CreditsError):
    """Raised by ``consume`` and ``hold`` when the available balance is below the amount asked for.

    The available balance is the live credits that open holds do not reserve.

    ``required`` and ``available`` carry the two figures for the message.
    """

    def __init__(self, required: Decimal, available: Decimal) -> None:
        self.required = required
        self.available = available
        super().__init__(
            f"Insufficient credits: {format_credits(required)} needed, "
            f"{format_credits(available)} available. "
            "Buy credits or choose a plan to continue."
        )


class ReferenceConflict(CreditsError):
    """Raised when a reference already names a different kind of operation or another user.

    A repeat of the same operation for the same user is not a conflict: it
    returns the first result.
    """


class UnknownReference(CreditsError, LookupError):
    """Raised by ``reverse`` when no grant or consume was made with the reference."""


class NotReversible(CreditsError):
    """Raised by ``reverse`` when the reference names an entry that cannot be undone.

    Only grants, consumes and positive adjustments can be reversed; expiries,
    transfers and reversals cannot.
    """


class ReversalExceedsOriginal(CreditsError):
    """Raised by ``reverse`` when the amount asked for exceeds what is left to reverse.

    What is left is the original amount minus every earlier reversal of it
    (counting, for grants, the part that was already spent).
    """


class UnknownHold(CreditsError, LookupError):
    """Raised by ``settle`` and ``release`` when no hold was made with the key."""


class InvalidHoldExpiry(CreditsError, ValueError):
    """Raised by ``hold`` when ``expires_at`` is naive or not in the future."""


class HoldReleased(CreditsError):
    """Raised by ``settle`` of an amount above 0 when the hold was released or expired first.

    Nothing is charged: once a hold is closed its credits may be spent by other
    calls, so charging them now could overdraw. ``state`` is ``"released"`` or
    ``"expired"`` (freed by ``release_expired_holds``). A settle of 0 (a release)
    of such a hold is not an error.
    """

    def __init__(self, key: str, state: str) -> None:
        self.key = key
        self.state = state
        how = "expired (its expiry passed and the sweep freed it)" if state == "expired" else state
        super().__init__(
            f"The credit hold {key!r} was {how} before it was settled; nothing was charged."
        )
