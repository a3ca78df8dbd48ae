from django.urls import path

from . import consumers

websocket_urlpatterns = [
    # Channels routes ASGI applications with Django's path(), which
    # django-stubs types for views alone; so in each routing.py.
    path("ws/ping/", consumers.PingConsumer.as_asgi()),  # type: ignore[arg-type]
]
