"""Signals about accounts, for apps above ``users`` (which it must not import).

Each is sent inside the transaction that made the change, so a receiver's own
writes (a queued task) commit or roll back with it. Receivers get ``user_id``.
"""

from django.dispatch import Signal

# The name on the profile changed (``users.services.profile_update``).
account_name_changed = Signal()

# The account was deleted and its personal data erased (``users.services.user_delete``).
account_deleted = Signal()
