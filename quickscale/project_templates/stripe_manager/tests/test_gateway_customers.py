"""``StripeGateway`` keeping a customer in step: update and erase, Stripe faked at the HTTP edge."""

from urllib.parse import parse_qsl

import pytest

from stripe_manager.gateway import GatewayError, StripeGateway
from stripe_manager.tests.test_gateway import FakeStripe, _error, sdk_customer


class BlankKeepingFakeStripe(FakeStripe):
    """``FakeStripe`` that also records empty values: Stripe reads ``name=`` as "unset name"."""

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        answer = super().request(method, url, headers, post_data, _usage=_usage)  # type: ignore[no-untyped-call]
        if post_data is not None:
            body = post_data.decode() if isinstance(post_data, bytes) else post_data
            self.sent[-1].params = dict(parse_qsl(body, keep_blank_values=True))
        return answer


@pytest.fixture
def fake():
    return BlankKeepingFakeStripe()


@pytest.fixture
def gateway(fake):
    return StripeGateway(api_key="sk_test_gateway", http_client=fake)


def test_update_customer_sends_the_new_email_and_name(fake, gateway):
    fake.answer("POST", "/v1/customers/cus_1", sdk_customer("cus_1"))

    gateway.update_customer(customer_id="cus_1", email="new@example.com", name="Dana Scully")

    [sent] = fake.sent
    assert (sent.method, sent.path) == ("POST", "/v1/customers/cus_1")
    assert sent.params == {"email": "new@example.com", "name": "Dana Scully"}


def test_erase_customer_clears_every_personal_field_and_the_metadata(fake, gateway):
    fake.answer("POST", "/v1/customers/cus_1", sdk_customer("cus_1"))

    gateway.erase_customer(customer_id="cus_1")

    [sent] = fake.sent
    assert (sent.method, sent.path) == ("POST", "/v1/customers/cus_1")  # modified, not deleted
    assert sent.params == {
        "name": "",
        "email": "",
        "phone": "",
        "description": "",
        "address": "",
        "shipping": "",
        "business_name": "",
        "individual_name": "",
        "metadata": "",
    }


def test_a_refused_update_is_a_gateway_error_with_stripes_message(fake, gateway):
    fake.answer(
        "POST", "/v1/customers/cus_gone", _error("No such customer: 'cus_gone'"), status=404
    )

    with pytest.raises(GatewayError, match="could not update the customer: No such customer"):
        gateway.update_customer(customer_id="cus_gone", email="a@example.com", name="")
