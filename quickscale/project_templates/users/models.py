"""The account model: email is the identity, there is no username."""

from typing import ClassVar

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models.functions import Lower

from users.managers import CustomUserManager


class CustomUser(AbstractUser):
    """A user who signs in with an email address.

    Emails are unique regardless of case (a database constraint on ``lower(email)``),
    because mail providers treat ``Bob@x.com`` and ``bob@x.com`` as one mailbox.
    """

    username = None  # type: ignore[assignment]
    email = models.EmailField("email address", unique=True)

    USERNAME_FIELD = "email"
    # createsuperuser asks for USERNAME_FIELD and the password already.
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    objects: ClassVar[CustomUserManager] = CustomUserManager()  # type: ignore[assignment]

    class Meta:
        verbose_name = "user"
        verbose_name_plural = "users"
        constraints = [
            models.UniqueConstraint(Lower("email"), name="users_customuser_email_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.email
