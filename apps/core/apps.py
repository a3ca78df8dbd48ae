from django.apps import AppConfig


class CoreConfig(AppConfig):
    """The platform every app stands on: sessions, the client's address, health
    and draining, the database-down answer, the WebSocket consumer base and the
    base template. project/ holds configuration; this holds the code it names."""

    name = "apps.core"
