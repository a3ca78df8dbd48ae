from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo page, visit counter and chat: every part of the stack at work.
    A guest: nothing else depends on it, and `make remove-demo` takes it out."""

    name = "apps.demo"
