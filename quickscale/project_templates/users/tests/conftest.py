import pytest

from users.tests.factories import make_user


@pytest.fixture
def account(db):
    return make_user()


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
