import pytest

from credits.tests.factories import make_user


@pytest.fixture
def staff(db):
    return make_user(is_staff=True, email="staff@example.com")


@pytest.fixture
def customer(db):
    return make_user(email="customer@example.com")


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


@pytest.fixture
def member_client(client, db):
    client.force_login(make_user(email="member@example.com"))
    return client
