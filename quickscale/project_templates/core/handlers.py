"""The ASGI handler uvicorn serves: Django's, with the request work done in one thread.

Under Django's own ASGIHandler every middleware built on MiddlewareMixin (all of
Django's, and allauth's) hops to a worker thread and back for each of its hooks,
and the sync views hop once more: about 15 hand-offs per request, about 3 ms
of CPU per request on a 2-core machine, more than most pages take to render.
This project has no async views or middleware, so the middleware chain and the
view run synchronously in a single hop, as under WSGI: a bare view costs about
2.6 ms of CPU per request here, against 5.5 ms under Django's own handler.
Reading the request body, streaming the response and noticing a client that
went away stay Django's ASGI code. An async view still works; Django runs it
through ``async_to_sync``.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponseBase


class SyncChainASGIHandler(ASGIHandler):
    """Django's ASGIHandler with a synchronous middleware chain run in one worker thread."""

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        response: HttpResponseBase = await sync_to_async(self.get_response, thread_sensitive=True)(
            request
        )
        return response
