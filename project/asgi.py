"""The ASGI application Daphne serves: WebSockets, and HTTP for its health checks."""

import gc
import os
from collections.abc import Awaitable, Callable
from importlib import import_module

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.conf import settings
from django.core.asgi import get_asgi_application
from django.urls import re_path

from apps.core.request_id import AsgiRequestContext
from apps.core.websocket_budget import read_websockets_within_budget

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings.production")

# Set up Django (settings, app registry) before importing anything that
# imports models, such as the consumers the URL configuration names.
django_asgi_app = get_asgi_application()

# The WebSocket routes sit beside the HTTP ones, in ROOT_URLCONF
# (project/urls.py).
websocket_urlpatterns = import_module(settings.ROOT_URLCONF).websocket_urlpatterns

# Python's cycle collector scans young objects every 2,000 allocations by
# default, and the older generations, where every open WebSocket's objects
# end up, every 20,000 and 200,000. One chat message to a room of hundreds
# allocates tens of thousands of objects in this process. Collecting young
# objects 25 times less often, and old ones rarer still, cut the time for a
# message to reach the last of 500 members by about a tenth at the median and
# more at p99 (docs/performance.md, scenario 6). It made no difference to
# Gunicorn, so it is here only.
gc.set_threshold(50_000, 20, 100)

# Daphne reads each client's WebSocket frames no faster than its message
# budget (apps/core/websocket_budget.py): a flood waits in the flooder's own
# buffers, not in this process.
read_websockets_within_budget()

# Prometheus metrics on METRICS_PORT (project/settings/base.py): Daphne is one
# process, which serves its own, from a thread. Only here, where the ASGI
# application starts, so that manage.py commands never take the port.
if settings.METRICS_PORT:
    from apps.core.metrics import metrics_serve

    metrics_serve(port=settings.METRICS_PORT, multiprocess=False)


async def no_route(scope, receive, send) -> None:
    """A handshake for a path no route serves: refused, which Daphne answers
    with a 403 (it has no way to send another status), with one access log
    line (WSREJECT), not URLRouter's ValueError, which Daphne turns into a 500
    with a traceback, and a Sentry event each."""
    await receive()  # websocket.connect
    await send({"type": "websocket.close"})


# Refuse handshakes whose Origin is not an allowed host (cross-site WebSocket
# hijacking), then attach the session and user. Routes are tried in order:
# no_route, which takes any path, last.
websocket_app: Callable[..., Awaitable[object]] = AllowedHostsOriginValidator(
    AuthMiddlewareStack(
        URLRouter(
            [
                *websocket_urlpatterns,
                # django-stubs types re_path() for views alone (as in each routing.py).
                re_path(r"", no_route),  # type: ignore[arg-type, list-item]
            ]
        )
    )
)

# With SENTRY_DSN set (project/sentry.py), a consumer's unhandled error goes to
# Sentry: sentry-sdk's Django integration sees Django's views (the "http"
# side), not consumers. Inside AsgiRequestContext, so that the event carries
# the socket's request id.
if settings.SENTRY_DSN:
    from sentry_sdk.integrations.asgi import SentryAsgiMiddleware

    websocket_app = SentryAsgiMiddleware(websocket_app)

# Outermost: every log line about a WebSocket, from its handshake to its
# close, carries the handshake's request id, and Daphne's access log is
# written in the project's schema (apps/core/request_id.py).
application = AsgiRequestContext(
    ProtocolTypeRouter({"http": django_asgi_app, "websocket": websocket_app})
)
