"""The ASGI application Daphne serves: WebSockets, and HTTP for its health checks."""

import os

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings.production")

# Set up Django (settings, app registry) before importing anything that
# imports models, such as the consumers behind the routing below.
django_asgi_app = get_asgi_application()

from apps.demo.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Refuse handshakes whose Origin is not an allowed host (cross-site
        # WebSocket hijacking), then attach the session and user.
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
