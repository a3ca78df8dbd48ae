"""The chat and uploads consumers through the project's whole ASGI
application (session middleware included), with the real Redis channel
layer. What every consumer gets from JsonConsumer (limits, draining, bad
JSON) is tested in apps/core/tests/test_consumers.py."""

import hashlib
import json
import uuid

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from apps.core.tasks.worker import Worker
from apps.demo.consumers import MAX_MESSAGE_CHARS
from apps.demo.uploads import UPLOADS_KEY
from project.asgi import application
from tests.stack import Communicator

pytestmark = pytest.mark.django_db(transaction=True)


ALLOWED_ORIGIN = (b"origin", b"http://localhost:8000")


def room_path() -> str:
    return f"/ws/chat/test-{uuid.uuid4().hex[:12]}/"


async def connected(path, *, cookie: str | None = None) -> Communicator:
    headers = [ALLOWED_ORIGIN]
    if cookie:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    communicator = Communicator(application, path, headers=headers)
    accepted, _ = await communicator.connect()
    assert accepted
    return communicator


async def test_message_reaches_everyone_in_the_room():
    path = room_path()
    alice, bob = await connected(path), await connected(path)
    outsider = await connected(room_path())

    await alice.send_to(text_data=json.dumps({"message": "hello"}))

    assert json.loads(await alice.receive_from()) == {"message": "hello"}
    assert json.loads(await bob.receive_from()) == {"message": "hello"}
    assert await outsider.receive_nothing()
    for communicator in (alice, bob, outsider):
        await communicator.disconnect()


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        ("[1, 2]", 'Send {"message": "<text>"}.'),
        ('{"text": "hi"}', 'Send {"message": "<text>"}.'),
        ('{"message": 42}', 'Send {"message": "<text>"}.'),
        ('{"message": "   "}', 'Send {"message": "<text>"}.'),
        (
            json.dumps({"message": "x" * (MAX_MESSAGE_CHARS + 1)}),
            f"Messages are limited to {MAX_MESSAGE_CHARS} characters.",
        ),
    ],
)
async def test_bad_messages_get_an_error_and_the_socket_stays_open(frame, error):
    client = await connected(room_path())
    await client.send_to(text_data=frame)
    assert json.loads(await client.receive_from()) == {"error": error}

    await client.send_to(text_data=json.dumps({"message": "still here"}))
    assert json.loads(await client.receive_from()) == {"message": "still here"}
    await client.disconnect()


# --- /ws/uploads/: each visitor's own checksums -------------------------------------


@sync_to_async
def visitor_uploads(content: bytes) -> tuple[str, str]:
    """A new visitor, who uploads a file with the page's form: their session
    cookie, and the file's storage name."""
    client = Client()
    assert client.post("/", {"file": SimpleUploadedFile("file.txt", content)}).status_code == 302
    [upload] = client.session[UPLOADS_KEY]
    return client.cookies[settings.SESSION_COOKIE_NAME].value, upload["name"]


@sync_to_async
def worker_runs_one():
    worker = Worker()
    row = worker.claim()
    assert row is not None, "no task was ready"
    worker.run_task(row)
    return row


async def test_each_page_hears_its_own_visitor_s_checksums_only():
    alice_cookie, alice_file = await visitor_uploads(b"alice's")
    bob_cookie, bob_file = await visitor_uploads(b"bob's")
    alice = await connected("/ws/uploads/", cookie=alice_cookie)
    bob = await connected("/ws/uploads/", cookie=bob_cookie)
    stranger = await connected("/ws/uploads/")  # no session at all

    await worker_runs_one()
    await worker_runs_one()

    for page, name, content in ((alice, alice_file, b"alice's"), (bob, bob_file, b"bob's")):
        expected = {"upload": name, "sha256": hashlib.sha256(content).hexdigest()}
        assert json.loads(await page.receive_from(timeout=5)) == expected
        assert await page.receive_nothing(timeout=0.5)  # not the other's
    assert await stranger.receive_nothing(timeout=0.5)
    for communicator in (alice, bob, stranger):
        await communicator.disconnect()


async def test_a_checksum_done_before_the_page_connected_is_sent_at_once():
    cookie, name = await visitor_uploads(b"early")
    await worker_runs_one()

    page = await connected("/ws/uploads/", cookie=cookie)

    expected = {"upload": name, "sha256": hashlib.sha256(b"early").hexdigest()}
    assert json.loads(await page.receive_from(timeout=5)) == expected
    assert await page.receive_nothing()
    await page.disconnect()


async def test_the_uploads_socket_takes_no_messages():
    # Nothing a client sends can make it join a group.
    cookie, _ = await visitor_uploads(b"mine")
    page = await connected("/ws/uploads/", cookie=cookie)
    await page.send_to(text_data=json.dumps({"group": "upload_0123456789abcdef"}))
    reply = json.loads(await page.receive_from())
    assert reply == {"error": "This endpoint takes no messages."}
    await page.disconnect()
