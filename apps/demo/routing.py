from django.urls import re_path

from . import consumers

websocket_urlpatterns = [
    # Room names: ASCII letters, digits, '_' and '-', as group names allow.
    # arg-type ignored as in apps/core/routing.py, which says why.
    re_path(r"^ws/chat/(?P<room>[-a-zA-Z0-9_]{1,64})/$", consumers.ChatConsumer.as_asgi()),  # type: ignore[arg-type]
    re_path(r"^ws/uploads/$", consumers.UploadsConsumer.as_asgi()),  # type: ignore[arg-type]
]
