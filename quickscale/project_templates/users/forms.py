"""Forms of the profile and account settings pages."""

from typing import Any

from django import forms
from django.contrib.auth.models import AbstractBaseUser

from users.avatars import AvatarField


class ProfileForm(forms.Form):
    """Edit the profile; an avatar is cleaned into a re-encoded WebP (users.avatars)."""

    full_name = forms.CharField(label="Full name", max_length=150, required=False)
    bio = forms.CharField(
        label="Bio", max_length=1000, required=False, widget=forms.Textarea(attrs={"rows": 4})
    )
    avatar = AvatarField(
        label="Avatar",
        required=False,
        help_text="JPEG, PNG, GIF or WebP, up to 2 MB.",
        widget=forms.FileInput(attrs={"accept": "image/jpeg,image/png,image/gif,image/webp"}),
    )
    clear_avatar = forms.BooleanField(label="Remove the current avatar", required=False)


class DeleteAccountForm(forms.Form):
    """Ask for the password before deleting an account."""

    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, *args: Any, user: AbstractBaseUser, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self) -> str:
        password: str = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError("That is not your password.", code="wrong_password")
        return password


class EmailPreferencesForm(forms.Form):
    """Which optional emails to receive; receipts and security emails are not optional."""

    email_low_balance = forms.BooleanField(label="Low balance warnings", required=False)
    email_expiry = forms.BooleanField(label="Credits about to expire", required=False)
    email_renewal = forms.BooleanField(label="Plan renewal reminders", required=False)
