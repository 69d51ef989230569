import logging
from datetime import timedelta

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from common.concurrency import CallSlotsBusy, call_slot, claim_slot, release_slot
from common.models import CallSlot

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _bounds(settings):
    settings.SERVICE_MAX_CONCURRENT_PER_KEY = 1
    settings.SERVICE_MAX_CONCURRENT_PER_PROCESS = 3
    settings.SERVICE_CALL_TIMEOUT_SECONDS = 300


def test_the_slot_of_a_holder_that_died_frees_itself_after_the_timeout():
    start = timezone.now()
    dead = claim_slot("api-key:1", now=start)  # never released: its process died
    assert dead is not None
    assert claim_slot("api-key:1", now=start + timedelta(seconds=299)) is None

    taken_over = claim_slot("api-key:1", now=start + timedelta(seconds=300))
    assert taken_over is not None and taken_over.token != dead.token
    # The dead holder's late release leaves the new holder's slot alone.
    release_slot(dead)
    assert CallSlot.objects.get().token == taken_over.token


def test_a_key_holds_at_most_its_bound_and_frees_each_slot_on_exit(settings):
    settings.SERVICE_MAX_CONCURRENT_PER_KEY = 2
    with call_slot("web-user:7"), call_slot("web-user:7"):
        with pytest.raises(CallSlotsBusy) as busy, call_slot("web-user:7"):
            pass
        assert busy.value.per_key and busy.value.retry_after == 1
        with call_slot("web-user:8"):  # another key is not affected
            pass
        assert CallSlot.objects.filter(key="web-user:7").count() == 2
    assert not CallSlot.objects.exists()


def test_the_process_bound_counts_calls_of_every_key():
    with call_slot("a"), call_slot("b"), call_slot("c"):
        with pytest.raises(CallSlotsBusy) as busy, call_slot("d"):
            pass
        assert not busy.value.per_key
    assert not CallSlot.objects.exists()
    with call_slot("d"):  # the process slots were given back
        pass


def test_a_call_that_raises_gives_its_slots_back(settings):
    settings.SERVICE_MAX_CONCURRENT_PER_PROCESS = 1
    with pytest.raises(RuntimeError), call_slot("api-key:1"):
        raise RuntimeError("model crashed")
    with call_slot("api-key:1"):
        pass


@pytest.mark.django_db(transaction=True)
def test_a_release_the_database_refuses_is_logged_and_the_call_stands(caplog):
    """A database gone mid-call: the caller sees the call's own outcome, not the release's.

    transaction=True: calls run in autocommit, as requests do; inside the test's
    transaction the refused statement would break every later query.
    """

    def refuse_releases(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith("DELETE"):
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    with (
        caplog.at_level(logging.WARNING, logger="common.concurrency"),
        connection.execute_wrapper(refuse_releases),
        call_slot("api-key:1"),
    ):
        result = "done"

    assert result == "done"
    assert "call slot not released" in caplog.text
    held = CallSlot.objects.get()
    assert claim_slot("api-key:1") is None
    assert claim_slot("api-key:1", now=held.expires_at) is not None


@pytest.mark.django_db(transaction=True)  # autocommit as requests; see the test above
def test_a_release_the_database_refused_is_retried_by_the_next_call(settings):
    settings.SERVICE_MAX_CONCURRENT_PER_KEY = 1

    def refuse_releases(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith("DELETE"):
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(refuse_releases), call_slot("api-key:1"):
        pass
    assert CallSlot.objects.filter(key="api-key:1").exists()

    with call_slot("api-key:2"):  # the database is back: any call of the process frees it
        pass

    assert not CallSlot.objects.exists()
    with call_slot("api-key:1"):  # the key's only slot is free again
        pass


def test_a_key_too_long_is_refused_and_claims_nothing():
    with pytest.raises(ValueError):
        claim_slot("k" * 201)
    assert not CallSlot.objects.exists()
