"""Every page of the project, for browser checks that visit them all (sweep, axe, gallery).

The inventory lives in ``core`` because preparing its data uses every app, and only
the top layer may import them all (the import contracts in pyproject.toml).

The API, in full::

    from core.testing.pages import PAGES, ROLES, prepare_site, signed_in_page

    site = prepare_site()                    # once, in a transactional test (live_server)
    for role in ROLES:                       # "anonymous", "user", "staff"
        with signed_in_page(browser, live_server.url, role, site) as page:
            for spec in pages_for(role):     # or: [p for p in PAGES if role in p.who]
                page.goto(spec.url(site))
                ...                          # page.console: its CSP violations and errors

- ``PageSpec``: ``name`` (unique, a file-name-safe slug), ``path`` (may hold
  ``{placeholders}`` filled from the site's ids by ``url(site)``), ``who`` (the roles the
  page is meant for, each of which should see it as a page, not a redirect) and
  ``ready`` (a CSS selector present once the page shows what it is for; the checks
  wait for it, so a redirect to the login page or an error fails loudly).
- ``prepare_site()`` makes the data that keeps pages from being empty, through the
  project's own paths (the offline Stripe simulator, the services, the task worker):
  a user (``site.user``) with a bought credit pack, a Basic subscription, usage history
  of two services, a finished batch job, an API key and a chat conversation; a staff
  account (``site.staff``) that has adjusted the user's credits (an audit entry); a
  second, unpaid checkout session. Call it once per test: a transactional test's rows
  go when it ends. It needs the settings ``site_settings`` sets (the simulator).
- ``signed_in_page(browser, base_url, role, site)``: a Playwright page in a context of
  its own, signed in through the login form as ``role`` (no one for "anonymous"), with
  ``page.console`` watching for CSP violations as the ``page`` fixture does (not
  asserted here: the caller decides). It also confirms the password once (allauth's
  reauthentication), so the two-factor set-up pages show their forms for the next few
  minutes (ACCOUNT_REAUTHENTICATION_TIMEOUT) rather than redirecting. Closes its context.

Both accounts sign in with ``users.tests.factories.PASSWORD``. Pages that only act
(POST-only views, downloads, the webhook, the API) are not listed: they show nothing.
"""

from __future__ import annotations

import dataclasses
import io
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from django.test import Client

from common.testing.browser import ConsoleWatch, log_in

Role = Literal["anonymous", "user", "staff"]
ROLES: tuple[Role, ...] = ("anonymous", "user", "staff")

USER_EMAIL = "member@example.com"
STAFF_EMAIL = "staff@example.com"

PUBLIC: tuple[Role, ...] = ("anonymous", "user")
SIGNED_OUT: tuple[Role, ...] = ("anonymous",)
USER: tuple[Role, ...] = ("user",)
STAFF: tuple[Role, ...] = ("staff",)


@dataclasses.dataclass(frozen=True)
class Site:
    """The ids of what ``prepare_site`` made, for the paths that name them."""

    user: Any
    staff: Any
    payment_id: int
    receipt_number: str
    job_id: str
    conversation_id: int
    checkout_session_id: str
    unsubscribe_token: str

    def ids(self) -> dict[str, Any]:
        return {
            "user_id": self.user.pk,
            "staff_id": self.staff.pk,
            "payment_id": self.payment_id,
            "receipt_number": self.receipt_number,
            "job_id": self.job_id,
            "conversation_id": self.conversation_id,
            "checkout_session_id": self.checkout_session_id,
            "unsubscribe_token": self.unsubscribe_token,
        }


@dataclasses.dataclass(frozen=True)
class PageSpec:
    """One page: where it is, who it is for, and what shows it has rendered."""

    name: str
    path: str
    who: tuple[Role, ...]
    ready: str = "main, .section, body"

    def url(self, site: Site) -> str:
        return self.path.format(**site.ids())


PAGES: list[PageSpec] = [
    # Public: marketing, pricing, legal-ish pages and the account forms.
    PageSpec("landing", "/", PUBLIC),
    PageSpec("pricing", "/pricing/", PUBLIC),
    PageSpec("about", "/about/", PUBLIC),
    PageSpec("contact", "/contact/", PUBLIC, ready="form"),
    PageSpec("login", "/accounts/login/", SIGNED_OUT, ready="form"),
    PageSpec("signup", "/accounts/signup/", SIGNED_OUT, ready="form"),
    PageSpec("password-reset", "/accounts/password/reset/", SIGNED_OUT, ready="form"),
    PageSpec("password-reset-done", "/accounts/password/reset/done/", SIGNED_OUT),
    PageSpec("unsubscribe", "/accounts/unsubscribe/{unsubscribe_token}/", PUBLIC),
    PageSpec("not-found", "/no-such-page/", PUBLIC),
    # Signed in. First, while the password confirmed at sign-in is fresh: allauth asks
    # for it again before two-factor changes (signed_in_page confirms it).
    PageSpec("totp-activate", "/accounts/2fa/totp/activate/", USER, ready="figure img"),
    PageSpec("passkey-add", "/accounts/2fa/webauthn/add/", USER, ready="form"),
    PageSpec("two-factor", "/accounts/2fa/", USER),
    PageSpec("passkeys", "/accounts/2fa/webauthn/", USER),
    PageSpec("reauthenticate", "/accounts/reauthenticate/", USER, ready="form"),
    # The app.
    PageSpec("home", "/home/", USER),
    PageSpec("services", "/services/", USER),
    PageSpec("service-sentiment", "/services/text_sentiment_analysis/", USER, ready="form"),
    PageSpec("service-batch", "/services/batch_sentiment_analysis/", USER, ready="form"),
    PageSpec("service-free", "/services/demo_free_service/", USER, ready="form"),
    PageSpec("service-image", "/services/image_metadata_extractor/", USER, ready="form"),
    PageSpec("service-summarizer", "/services/text_summarizer/", USER, ready="form"),
    PageSpec("service-extraction", "/services/structured_extraction/", USER),
    PageSpec("service-chat", "/services/chat/", USER),
    PageSpec("usage", "/services/usage/", USER),
    PageSpec("jobs", "/services/jobs/", USER),
    PageSpec("job", "/services/jobs/{job_id}/", USER),
    PageSpec("credits", "/credits/", USER),
    PageSpec("billing", "/billing/", USER),
    PageSpec("receipt", "/billing/receipts/{receipt_number}/", USER),
    PageSpec("plan-upgrade", "/billing/plan/change/?price_id=price_sim_pro_monthly", USER),
    PageSpec("plan-cancel", "/billing/plan/cancel/", USER),
    PageSpec("checkout", "/stripe/simulator/checkout/{checkout_session_id}/", USER),
    PageSpec("checkout-success", "/credits/success/?session_id={checkout_session_id}", USER),
    PageSpec("checkout-cancel", "/credits/cancel/", USER),
    PageSpec("api-keys", "/api-keys/", USER),
    PageSpec("chat", "/chat/", USER),
    PageSpec("chat-conversation", "/chat/{conversation_id}/", USER),
    PageSpec("profile", "/accounts/profile/", USER),
    PageSpec("settings", "/accounts/settings/", USER),
    PageSpec("emails", "/accounts/email/", USER),
    PageSpec("password-change", "/accounts/password/change/", USER, ready="form"),
    PageSpec("delete-account", "/accounts/delete/", USER),
    PageSpec("logout", "/accounts/logout/", USER, ready="form"),
    # Staff: the dashboard.
    PageSpec("dashboard", "/dashboard/", STAFF),
    PageSpec("admin-users", "/dashboard/users/", STAFF),
    PageSpec("admin-user", "/dashboard/users/{user_id}/", STAFF),
    PageSpec("admin-payments", "/dashboard/payments/", STAFF),
    PageSpec("admin-payment", "/dashboard/payments/{payment_id}/", STAFF),
    PageSpec("admin-refund", "/dashboard/payments/{payment_id}/refund/", STAFF, ready="form"),
    PageSpec("admin-products", "/dashboard/products/", STAFF),
    PageSpec("admin-services", "/dashboard/services/", STAFF),
    PageSpec("admin-service", "/dashboard/services/text_sentiment_analysis/", STAFF),
    PageSpec("admin-audit", "/dashboard/audit/", STAFF),
    PageSpec("staff-home", "/home/", STAFF),
]


def pages_for(role: Role) -> list[PageSpec]:
    return [spec for spec in PAGES if role in spec.who]


def site_settings(settings: Any) -> None:
    """What ``prepare_site`` needs: the offline Stripe simulator (pytest-django's ``settings``)."""
    from stripe_manager.tests.factories import SECRET

    settings.STRIPE_GATEWAY = "simulator"
    settings.STRIPE_WEBHOOK_SECRET = SECRET


def _checkout(client: Client, price_id: str) -> str:
    """Start a simulated checkout; return its page's path."""
    response = client.post("/billing/checkout/", {"price_id": price_id, "quantity": "1"})
    assert response.status_code == 303, response.content
    return str(response["Location"])


def prepare_site() -> Site:
    """Make a user with a full history and a staff account (see the module docstring)."""
    from django.core.cache import cache
    from django.core.management import call_command

    from api.services import api_key_create
    from chat.models import Conversation, Message
    from common.testing.tasks import run_queued_tasks
    from services.configuration import ensure_service_rows
    from services.models import Job
    from stripe_manager.models import Payment
    from users.email_preferences import Topic, unsubscribe_token
    from users.tests.factories import make_user

    # The database cache is no model: a transactional test does not empty it.
    cache.clear()
    call_command("seed_demo_catalog", stdout=io.StringIO())
    ensure_service_rows()
    user = make_user(USER_EMAIL)
    staff = make_user(STAFF_EMAIL, is_staff=True)

    customer = Client()
    customer.force_login(user)
    for price_id in ("price_sim_credits_100", "price_sim_basic_monthly"):
        paid = customer.post(_checkout(customer, price_id), {"action": "pay"})
        assert paid.status_code == 303, paid.content
    unpaid = _checkout(customer, "price_sim_credits_100")
    session_id = unpaid.rstrip("/").rsplit("/", 1)[-1]

    for path, data in (
        ("/services/text_sentiment_analysis/", {"text": "What a wonderful, delightful day."}),
        (
            "/services/text_summarizer/",
            {
                "text": "The pages fit phones. Tables stack as cards. "
                "Selects are styled. Nothing scrolls sideways.",
                "max_sentences": "2",
            },
        ),
        ("/services/batch_sentiment_analysis/", {"texts": "I adore this.\nThis is dreadful."}),
    ):
        response = customer.post(path, data)
        assert response.status_code in (200, 302, 303), (
            path,
            response.status_code,
            response.content[-3000:],
        )
    run_queued_tasks()
    job = Job.objects.filter(owner=user).latest("created_at")

    api_key_create(user, name="Production server")
    conversation = Conversation.objects.create(user=user, title="Plan a launch")
    Message.objects.create(
        conversation=conversation, role=Message.Role.USER, content="How do I launch a SaaS?"
    )
    Message.objects.create(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        content="Start with pricing, then a landing page, then tell people.",
        input_tokens=12,
        output_tokens=14,
    )

    staff_client = Client()
    staff_client.force_login(staff)
    adjusted = staff_client.post(
        f"/dashboard/users/{user.pk}/adjust/",
        {
            "direction": "grant",
            "amount": "25",
            "reason": "Goodwill for the outage",
            "token": uuid.uuid4().hex,
        },
    )
    assert adjusted.status_code == 302, adjusted.content

    payment = Payment.objects.filter(user=user).earliest("created_at")
    return Site(
        user=user,
        staff=staff,
        payment_id=payment.pk,
        receipt_number=payment.receipt_number,
        job_id=str(job.pk),
        conversation_id=conversation.pk,
        checkout_session_id=session_id,
        unsubscribe_token=unsubscribe_token(user, Topic.LOW_BALANCE),
    )


@contextmanager
def signed_in_page(browser: Any, base_url: str, role: Role, site: Site) -> Iterator[Any]:
    """A page in a fresh context, signed in as ``role``; ``page.console`` holds its console."""
    from users.tests.factories import PASSWORD

    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=base_url)
    context.set_default_timeout(20_000)
    page = context.new_page()
    watch = ConsoleWatch()
    page.on("console", watch.on_console)
    page.console = watch
    try:
        if role != "anonymous":
            account = site.user if role == "user" else site.staff
            log_in(page, account.email, PASSWORD)
            page.get_by_role("link", name=account.email).first.wait_for(state="attached")
            # Confirmed now, allauth shows the two-factor set-up pages for a few minutes.
            page.goto("/accounts/reauthenticate/")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Confirm").click()
            page.wait_for_load_state()
        yield page
    finally:
        context.close()
