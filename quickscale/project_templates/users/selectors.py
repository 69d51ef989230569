"""Reads on accounts and profiles."""

from users.models import CustomUser, Profile


def profile_for(user: CustomUser) -> Profile:
    """Return the user's profile, creating an empty one on first access."""
    profile, _ = Profile.objects.get_or_create(user=user)
    return profile
