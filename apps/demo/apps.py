from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo page and chat: every part of the stack at work. A fork can delete
    this app, its entries in INSTALLED_APPS and project/urls.py, and
    project/asgi.py's routing import."""

    name = "apps.demo"
