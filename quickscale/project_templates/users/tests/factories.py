from allauth.account.models import EmailAddress

from users.models import CustomUser

PASSWORD = "Correct-horse-42"


def make_user(email: str = "dana@example.com", *, verified: bool = True, **fields) -> CustomUser:
    """An account with a verified primary address and the password PASSWORD."""
    user = CustomUser.objects.create_user(email=email, password=PASSWORD, **fields)
    EmailAddress.objects.create(user=user, email=email, verified=verified, primary=True)
    return user
