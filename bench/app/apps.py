from django.apps import AppConfig


class BenchConfig(AppConfig):
    """The pages and the WebSocket room that `make bench` measures.

    Mounted into the app image as apps.bench by bench/compose.yml, and
    installed by bench/settings.py; never part of the site. The benchmark
    measures the platform with pages of its own, so that it needs no app of
    the site's."""

    name = "apps.bench"
    label = "bench"
