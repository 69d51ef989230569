"""Tests of sending email: the worker's email thread played in the test, a mail server on a
local socket, and time for retries.

``send_queued_emails`` sends what the outbox holds as ``manage.py worker``
does, with its own source function (``common.mail_tasks.send_next_due_email``),
in the test's connection; ``send_queued_emails_later`` lets the retries' time
come first. Emails are not tasks: ``run_queued_tasks`` sends none of them.

``FakeSMTPServer`` refuses, hangs, accepts, or accepts late.

SMTP is the process edge of email: the tests point Django's real SMTP backend
(``django.core.mail.backends.smtp.EmailBackend``) at this server instead of
replacing Django's code. Each connection follows the next behaviour of
``script`` (then ``accept``):

- ``accept``: a normal exchange; the message is kept in ``messages``.
- ``busy``: greets with ``421`` (service not available, try later) and closes.
- ``reject``: refuses the recipient with ``550`` (final: there is no such mailbox).
- ``hang``: takes the connection and says nothing until ``release()`` or the
  client gives up (its ``EMAIL_TIMEOUT``).
- ``late``: says nothing until ``answer()``, then a normal exchange (a send that
  takes longer than its worker's claim, if the client waits that long);
  ``late-reject``: the same, then refuses the recipient as ``reject`` does.

``connections`` counts the connections the server has seen, so a test can show
a request finished without ever talking to the mail server.
"""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from email.message import Message
from typing import Any, Literal

from django.utils import timezone

from common.mail_tasks import send_next_due_email
from common.models import QueuedEmail

Behaviour = Literal["accept", "busy", "reject", "hang", "late", "late-reject"]


class FakeSMTPServer:
    """A threaded SMTP server on 127.0.0.1 at ``port``; see the module docstring."""

    def __init__(self) -> None:
        self.script: list[Behaviour] = []
        self.messages: list[Message] = []
        self.connections = 0
        self._released = threading.Event()
        self._answered = threading.Event()
        self._lock = threading.Lock()
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                outer._serve(self)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._released.set()
        self._answered.set()
        self._server.shutdown()
        self._server.server_close()

    def release(self) -> None:
        """Let every hanging connection go (it is closed without a word)."""
        self._released.set()

    def answer(self) -> None:
        """Let every ``late`` and ``late-reject`` connection go on to its exchange."""
        self._answered.set()

    def _next(self) -> Behaviour:
        with self._lock:
            self.connections += 1
            return self.script.pop(0) if self.script else "accept"

    def _serve(self, handler: socketserver.StreamRequestHandler) -> None:
        behaviour = self._next()
        if behaviour == "hang":
            # Wait for release or for the client to give up and close.
            handler.connection.settimeout(0.1)
            while not self._released.is_set():
                try:
                    if handler.connection.recv(1024) == b"":
                        return
                except TimeoutError:
                    continue
                except OSError:
                    return
            return
        if behaviour in ("late", "late-reject"):
            self._answered.wait()
        reply = handler.wfile.write
        if behaviour == "busy":
            reply(b"421 fake.test Service not available, try later\r\n")
            return
        reply(b"220 fake.test ESMTP\r\n")
        data: list[bytes] = []
        while line := handler.rfile.readline():
            command = line.strip().upper()
            if command.startswith((b"EHLO", b"HELO")):
                reply(b"250 fake.test\r\n")
            elif command.startswith(b"MAIL FROM"):
                reply(b"250 OK\r\n")
            elif command.startswith(b"RCPT TO"):
                refused = behaviour in ("reject", "late-reject")
                reply(b"550 No such mailbox\r\n" if refused else b"250 OK\r\n")
            elif command == b"DATA":
                reply(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                data = []
                while (chunk := handler.rfile.readline()) not in (b".\r\n", b""):
                    data.append(chunk[1:] if chunk.startswith(b"..") else chunk)
                with self._lock:
                    self.messages.append(message_from_bytes(b"".join(data)))
                reply(b"250 OK queued\r\n")
            elif command == b"QUIT":
                reply(b"221 Bye\r\n")
                return
            elif command == b"RSET" or command == b"NOOP":
                reply(b"250 OK\r\n")
            else:
                reply(b"502 Command not implemented\r\n")


@contextmanager
def fake_smtp_server() -> Iterator[FakeSMTPServer]:
    """Run a :class:`FakeSMTPServer` for the block; hanging connections end with it."""
    server = FakeSMTPServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def body_of(message: Message) -> str:
    """The plain-text part of a message the fake server received."""
    part = next(
        (p for p in message.walk() if p.get_content_type() == "text/plain"),
        message,
    )
    payload = part.get_payload(decode=True)
    return payload.decode() if isinstance(payload, bytes) else str(payload)


def send_through(settings: Any, server: FakeSMTPServer, *, timeout: int = 1) -> None:
    """Point Django's real SMTP backend at ``server``; silence times out after ``timeout`` s."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = server.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = timeout


def send_queued_emails(*, limit: int = 1_000) -> int:
    """Send the emails due now, as the worker's email thread does; return how many it tried
    (sent, skipped, failed: a failure is due again later, not now)."""
    for tried in range(limit + 1):
        if not send_next_due_email():
            return tried
    raise RuntimeError(f"More than {limit} emails were due: one keeps coming back.")


def send_queued_emails_later() -> int:
    """Send the pending emails as if their next attempt had come (claimed ones excepted: a
    worker holds them); return how many it tried."""
    waiting = QueuedEmail.objects.filter(
        state=QueuedEmail.State.PENDING, next_attempt_at__gt=timezone.now()
    )
    waiting.update(next_attempt_at=timezone.now())
    return send_queued_emails()


def pending_email_builders() -> list[str]:
    """The builders (dotted paths) of the emails waiting in the outbox, oldest first."""
    return list(
        QueuedEmail.objects.filter(state=QueuedEmail.State.PENDING)
        .order_by("created_at", "id")
        .values_list("builder", flat=True)
    )
