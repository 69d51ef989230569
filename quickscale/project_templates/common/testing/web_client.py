"""One browser's visits to real server processes: its cookies, CSRF token and forms.

Django's test client talks to the app in the test's own process; a test of
several server processes needs what a browser does over HTTP instead. A
``WebClient`` keeps the cookies every answer sets and sends them to whichever
server (port) the test names, as a load balancer would spread one browser's
requests. Redirects are not followed: tests assert where they lead.
"""

from __future__ import annotations

import http.client
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from http.cookies import SimpleCookie
from urllib.parse import urlencode

TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class Answer:
    """A server's answer: status, headers and body."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    @property
    def location(self) -> str:
        return self.headers.get("Location", "")


@dataclass(frozen=True)
class Upload:
    """A file field of a form: its name on the user's disk, bytes and declared type."""

    filename: str
    content: bytes
    content_type: str = "application/octet-stream"


class WebClient:
    """A browser's cookie jar and requests, to servers on 127.0.0.1 by port."""

    def __init__(self) -> None:
        self.cookies: dict[str, str] = {}

    def get(self, port: int, path: str) -> Answer:
        return self.request(port, "GET", path)

    def post(
        self,
        port: int,
        path: str,
        fields: Mapping[str, str],
        files: Mapping[str, Upload] | None = None,
    ) -> Answer:
        """Submit a form as the page would: with the CSRF token of this browser's cookie.

        Django takes the cookie's secret in the form field as it takes the masked
        token the page renders. Fetch a page first, so the cookie is set.
        """
        form = {**fields}
        if "csrftoken" in self.cookies:
            form.setdefault("csrfmiddlewaretoken", self.cookies["csrftoken"])
        if files:
            body, content_type = _multipart(form, files)
        else:
            body, content_type = urlencode(form).encode(), "application/x-www-form-urlencoded"
        return self.request(port, "POST", path, body, {"Content-Type": content_type})

    def request(
        self,
        port: int,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        sent = dict(headers or {})
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_SECONDS)
        try:
            connection.request(method, path, body, sent)
            response = connection.getresponse()
            answer = Answer(response.status, response.headers, response.read())
        finally:
            connection.close()
        self._keep_cookies(answer.headers)
        return answer

    def _keep_cookies(self, headers: http.client.HTTPMessage) -> None:
        for header in headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                # Django deletes a cookie by setting it empty with Max-Age=0.
                if morsel["max-age"] == "0" or not morsel.value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value


def _multipart(fields: Mapping[str, str], files: Mapping[str, Upload]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
        )
    for name, upload in files.items():
        parts.append(
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                f'filename="{upload.filename}"\r\nContent-Type: {upload.content_type}\r\n\r\n'
            ).encode()
            + upload.content
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
