"""The site's routes (project/urls.py), and the benchmark's beside them."""

from django.urls import path, re_path

from project.urls import urlpatterns as site_urlpatterns
from project.urls import websocket_urlpatterns as site_websocket_urlpatterns

from . import consumers, views

urlpatterns = [
    path("bench/page/", views.page),
    path("bench/public/", views.public),
    path("bench/session/", views.session_read),
    path("bench/slow/", views.slow),
    path("bench/enqueue/", views.page_enqueue),
    path("bench/tasks/", views.tasks),
    *site_urlpatterns,
]

websocket_urlpatterns = [
    re_path(r"^ws/bench/room/(?P<room>[-a-zA-Z0-9_]{1,64})/$", consumers.RoomConsumer.as_asgi()),
    *site_websocket_urlpatterns,
]
