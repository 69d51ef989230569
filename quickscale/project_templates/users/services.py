"""Writes on accounts and profiles (reads are in users.selectors)."""

import logging

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.http import HttpRequest

from users import security, signals
from users.avatars import EncodedAvatar
from users.email_preferences import Topic, field_name
from users.models import CustomUser, LoginLockout, Profile, SecurityEvent

logger = logging.getLogger(__name__)


@transaction.atomic
def profile_update(
    *,
    profile: Profile,
    full_name: str,
    bio: str,
    avatar: EncodedAvatar | None,
    clear_avatar: bool,
) -> Profile:
    """Save the profile; a new or cleared avatar deletes the old file after commit.

    ``avatar`` is what ``users.avatars.avatar_encode`` made of an upload (never
    the upload itself): only re-encoded WebP files are stored. A changed name is
    announced (``signals.account_name_changed``), e.g. to the billing customer.
    """
    old_name = profile.full_name
    _profile_save(
        profile=profile, full_name=full_name, bio=bio, avatar=avatar, clear_avatar=clear_avatar
    )
    if profile.full_name != old_name:
        signals.account_name_changed.send(sender=Profile, user_id=profile.user_id)
    return profile


def _profile_save(
    *,
    profile: Profile,
    full_name: str,
    bio: str,
    avatar: EncodedAvatar | None,
    clear_avatar: bool,
) -> None:
    old_avatar = profile.avatar.name if profile.avatar else ""
    profile.full_name = full_name
    profile.bio = bio
    if avatar is not None:
        profile.avatar = avatar
    elif clear_avatar:
        profile.avatar = None
    profile.save()
    new_avatar = profile.avatar.name if profile.avatar else ""
    if old_avatar and old_avatar != new_avatar:
        storage = profile.avatar.storage
        transaction.on_commit(lambda: storage.delete(old_avatar))


def deleted_email(user: AbstractBaseUser) -> str:
    """The placeholder address a deleted account keeps (unique, undeliverable)."""
    return f"deleted-{user.pk}@deleted.invalid"


@transaction.atomic
def user_delete(*, user: CustomUser, request: HttpRequest | None = None) -> None:
    """Deactivate ``user`` and erase their personal data; keep the row.

    Rows that financial history points to (credit lots, payments, usage) keep
    pointing at this user, so nothing is deleted that PROTECT foreign keys guard.
    Changing the password hash ends every session of the account (Django checks
    the session's auth hash on each request); the caller logs the current one out.
    """
    old_email = user.email
    placeholder = deleted_email(user)
    profile = Profile.objects.filter(user=user).first()
    if profile is not None:
        _profile_save(profile=profile, full_name="", bio="", avatar=None, clear_avatar=True)
    EmailAddress.objects.filter(user=user).delete()
    # Passkeys and the authenticator secret go too: nothing can sign in as this account.
    Authenticator.objects.filter(user=user).delete()
    LoginLockout.objects.filter(scope=LoginLockout.Scope.ACCOUNT, key=old_email.lower()).delete()
    user.email = placeholder
    user.first_name = ""
    user.last_name = ""
    user.is_active = False
    user.set_unusable_password()
    user.save()
    SecurityEvent.objects.filter(user=user).update(
        email=placeholder, ip_address=None, user_agent=""
    )
    security.record(SecurityEvent.Kind.ACCOUNT_DELETED, request=None, user=user)
    # Apps holding personal data elsewhere (the Stripe customer) erase it too.
    signals.account_deleted.send(sender=CustomUser, user_id=user.pk)


def email_preferences_update(*, profile: Profile, receive: dict[Topic, bool]) -> Profile:
    """Switch the optional emails named in ``receive`` on (True) or off (False)."""
    for topic, wanted in receive.items():
        setattr(profile, field_name(topic), wanted)
    profile.save(update_fields=[field_name(topic) for topic in receive] + ["updated_at"])
    logger.info(
        "email preferences saved",
        extra={"user_id": profile.user_id, "receive": {t.value: w for t, w in receive.items()}},
    )
    return profile


def email_unsubscribe(*, user: CustomUser, topic: Topic) -> None:
    """Switch ``topic`` emails off for ``user`` (from an email's unsubscribe link)."""
    profile, _ = Profile.objects.get_or_create(user=user)
    email_preferences_update(profile=profile, receive={topic: False})
