from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.management.base import BaseCommand

from apps.core.draining import server_group


class Command(BaseCommand):
    help = (
        "Ask every WebSocket open on this container to close with code 4012 "
        "(service restart), so that its client reconnects. Run while draining."
    )

    def handle(self, *args, **options):
        layer = get_channel_layer()
        assert layer is not None  # settings always name a default layer
        async_to_sync(layer.group_send)(server_group(), {"type": "server.draining"})
        self.stdout.write(f"Asked the WebSockets in {server_group()} to reconnect.")
