"""Every route of the site, HTTP and WebSocket, in one place.

/healthz and /readyz are answered before URL routing, by
apps.core.middleware.HealthCheckMiddleware. nginx sends /ws/ to Daphne, which
serves websocket_urlpatterns (project/asgi.py), and everything else to
Gunicorn, which serves urlpatterns.
"""

from django.contrib import admin
from django.urls import path

from apps.accounts import urls as accounts_urls
from apps.core import routing as core_routing
from apps.demo import routing as demo_routing  # [demo]
from apps.demo import urls as demo_urls  # [demo]

urlpatterns = [
    path("admin/", admin.site.urls),
    # Sign up, sign in and out, passwords: /accounts/ (apps/accounts/urls.py).
    *accounts_urls.urlpatterns,
    *demo_urls.urlpatterns,  # [demo]
]

websocket_urlpatterns = [
    *core_routing.websocket_urlpatterns,
    *demo_routing.websocket_urlpatterns,  # [demo]
]

# A database outage answers 503 "try again", not 500.
handler500 = "apps.core.views.server_error"
