"""The ASGI handler uvicorn serves: Django's, with the middleware chain and the view in one thread.

Under Django's own ASGIHandler the middleware chain runs in async mode, and each
hook of a middleware built on MiddlewareMixin (all of Django's and allauth's)
hands the request to a worker thread and back; a sync view is one more hand-off.
That is fifteen hand-offs per request with this project's middleware, about 1 ms
of CPU: under Django's handler the landing page serves about 30% fewer requests
a second. This handler builds the chain in sync mode, as Django does under WSGI,
and runs it with the view in one hand-off.

Everything else stays Django's ASGI code: reading the body, noticing a client
that went away, sending the response. An async view works (Django runs it with
``async_to_sync`` on the server's event loop), and a ``StreamingHttpResponse``
over an async iterator is sent from the event loop chunk by chunk, holding no
thread. ASGI middleware such as ``core.body_limit`` wraps the handler from
outside (``core/asgi.py``).

The two methods overridden here are not documented Django API:
``core/tests/test_handlers.py`` pins their signatures and the behaviour this
relies on, so a Django upgrade that changes them fails the tests, not the site.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponseBase


class SyncChainASGIHandler(ASGIHandler):
    """Django's ASGIHandler with a synchronous middleware chain run in one worker thread."""

    def load_middleware(self, is_async: bool = False) -> None:
        # Django's ASGIHandler asks for an async chain; build the sync one WSGI uses.
        super().load_middleware(is_async=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        # Django's sync get_response, which also closes the request and logs error
        # responses, in the thread Django gives this request's sync work.
        response: HttpResponseBase = await sync_to_async(self.get_response, thread_sensitive=True)(
            request
        )
        return response
