from pathlib import Path
from typing import Any

from django.core.mail import EmailMultiAlternatives, get_connection, send_mail


def backend(settings: Any, tmp_path: Path) -> tuple[Any, Path]:
    path = tmp_path / "nested" / "logs" / "mail.log"
    settings.MAIL_LOG_PATH = path
    return get_connection("common.mail_log.EmailBackend"), path


def test_mail_log_creates_its_folder_and_writes_headers_then_the_text(settings, tmp_path):
    connection, path = backend(settings, tmp_path)
    send_mail(
        "Welcome", "Click the link.", "from@example.com", ["to@example.com"], connection=connection
    )
    text = path.read_text()
    assert "From: from@example.com" in text
    assert "To: to@example.com" in text
    assert "Subject: Welcome" in text
    assert text.index("Subject: Welcome") < text.index("Click the link.")


def test_mail_log_appends_instead_of_overwriting(settings, tmp_path):
    connection, path = backend(settings, tmp_path)
    for subject in ("First", "Second"):
        send_mail(subject, "body", "from@example.com", ["to@example.com"], connection=connection)
    text = path.read_text()
    assert text.index("Subject: First") < text.index("Subject: Second")


def test_mail_log_puts_the_plain_text_part_before_the_html_part(settings, tmp_path):
    connection, path = backend(settings, tmp_path)
    message = EmailMultiAlternatives(
        "Verify", "plain version", "from@example.com", ["to@example.com"], connection=connection
    )
    message.attach_alternative("<p>html version</p>", "text/html")
    assert message.send() == 1
    text = path.read_text()
    assert text.index("plain version") < text.index("<p>html version</p>")
