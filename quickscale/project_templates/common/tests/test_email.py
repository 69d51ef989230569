import logging
import smtplib
from unittest import mock

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives

from common.email import absolute_url, send_templated


@pytest.fixture
def templates(settings, tmp_path):
    """A ``notice`` email (text and HTML) in a template folder of its own."""
    folder = tmp_path / "templates" / "mail"
    folder.mkdir(parents=True)
    (folder / "notice.txt").write_text("Hello {{ name }} from {{ PROJECT_NAME }}.")
    (folder / "notice.html").write_text("<p>Hello {{ name }} from {{ PROJECT_NAME }}.</p>")
    settings.TEMPLATES = [
        {**settings.TEMPLATES[0], "DIRS": [tmp_path / "templates", *settings.TEMPLATES[0]["DIRS"]]}
    ]
    settings.PROJECT_NAME = "Acme AI"


@pytest.mark.usefixtures("templates")
def test_an_email_has_a_text_and_an_html_body_and_names_the_project():
    sent = send_templated("mail/notice", to="eve@example.com", subject="Hi", context={"name": "E"})

    assert sent is True
    [message] = mail.outbox
    assert message.subject == "[Acme AI] Hi"
    assert message.to == ["eve@example.com"]
    assert message.body == "Hello E from Acme AI."
    assert isinstance(message, EmailMultiAlternatives)
    assert message.alternatives[0] == ("<p>Hello E from Acme AI.</p>", "text/html")


@pytest.mark.usefixtures("templates")
@pytest.mark.parametrize(
    "failure", [smtplib.SMTPServerDisconnected("gone"), ConnectionRefusedError("refused")]
)
def test_a_failed_send_is_logged_and_reported_never_raised(caplog, failure):
    caplog.set_level(logging.ERROR, logger="common.email")
    with mock.patch("django.core.mail.EmailMessage.send", side_effect=failure):
        sent = send_templated("mail/notice", to="eve@example.com", subject="Hi", context={})

    assert sent is False
    [record] = caplog.records
    assert record.getMessage() == "email not sent"
    assert record.template == "mail/notice"
    assert record.error == str(failure)


def test_links_in_emails_carry_the_sites_address(settings):
    settings.SITE_URL = "https://app.example.com/"
    assert absolute_url("/credits/") == "https://app.example.com/credits/"
