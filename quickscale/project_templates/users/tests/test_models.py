import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError

User = get_user_model()


def test_custom_user_has_no_username_and_signs_in_by_email():
    assert User.USERNAME_FIELD == "email"
    field_names = {field.name for field in User._meta.get_fields()}
    assert "username" not in field_names


@pytest.mark.django_db
def test_create_user_by_email_normalizes_the_domain():
    user = User.objects.create_user(email="Ann@Example.COM", password="pw-12345")
    assert user.email == "Ann@example.com"
    assert user.check_password("pw-12345")
    assert not user.is_staff


@pytest.mark.django_db
def test_create_superuser_is_staff_and_superuser():
    admin = User.objects.create_superuser(email="boss@example.com", password="pw-12345")
    assert admin.is_staff
    assert admin.is_superuser


@pytest.mark.django_db
def test_create_user_requires_an_email():
    with pytest.raises(ValueError, match="email"):
        User.objects.create_user(email="", password="pw")


@pytest.mark.django_db
def test_email_is_unique_regardless_of_case():
    User.objects.create_user(email="bob@example.com", password="pw")
    with pytest.raises(IntegrityError):
        User.objects.create_user(email="BOB@example.com", password="pw")


@pytest.mark.django_db
def test_lookup_by_natural_key_ignores_case():
    user = User.objects.create_user(email="carol@example.com", password="pw")
    assert User.objects.get_by_natural_key("CAROL@example.com") == user
