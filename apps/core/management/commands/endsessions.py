from django.contrib.sessions.models import Session
from django.core.management.base import BaseCommand, CommandError
from redis.exceptions import RedisError

from apps.core.sessions import Copies, copies_drop_all


class Command(BaseCommand):
    help = (
        "End every session: everyone is logged out, on every process, at once "
        "(after an incident, say). Deletes every row of django_session and "
        "every copy of one in Redis."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--no-input",
            "--noinput",
            action="store_false",
            dest="interactive",
            help="Do not ask for confirmation.",
        )

    def handle(self, *args, interactive=True, **options):
        if interactive:
            answer = input("Every user will be logged out. Type 'yes' to go on: ")
            if answer != "yes":
                raise CommandError("Nothing ended.")
        # One DELETE: its trigger tells the workers to drop every copy.
        ended, _ = Session.objects.all().delete()
        # And here too, so that it holds with no worker running (copies are
        # then distrusted within seconds anyway: apps/core/sessions.py).
        dropped = "no copies in Redis"
        if Copies.client() is not None:
            try:
                copies_drop_all()
                dropped = "every copy in Redis dropped"
            except RedisError as error:
                dropped = f"Redis unreachable ({error}); the workers drop the copies"
        self.stdout.write(f"Ended {ended} sessions; {dropped}.")
