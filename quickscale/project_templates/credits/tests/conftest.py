import pytest

from credits.tests.factories import make_user


@pytest.fixture
def user(db):
    return make_user()


@pytest.fixture
def staff(db):
    return make_user(is_staff=True)


@pytest.fixture
def other_user(db):
    return make_user()
