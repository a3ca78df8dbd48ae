from django.conf import settings
from django.db import models

# Each upload is a folder of its own in here, in default storage.
UPLOADS_FOLDER = "demo"


class Upload(models.Model):
    """One file of the demo's uploads, from its save until the worker deletes
    it (tasks.uploads_expire): what it takes in storage, and who sent it,
    for the quotas (uploads.py)."""

    name = models.CharField(max_length=255, unique=True)  # its name in default storage
    bytes = models.PositiveBigIntegerField()  # what it takes, blocks and folder included
    # The client as its limits count it (apps/core/clients.py: an address, an
    # IPv6 /64), and the account when one was signed in.
    client = models.GenericIPAddressField(null=True)
    account = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(db_index=True)

    def __str__(self):
        return self.name
