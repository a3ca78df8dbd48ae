"""The upload form on the home page, through Django's test client (no nginx),
with uploads saved in a temporary MEDIA_ROOT, and their checksums computed by
the platform's worker (one turn of its loop); and the limits on what they
may take, counted in the real PostgreSQL."""

import hashlib
import re
import threading
from datetime import timedelta
from urllib.parse import unquote

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from apps.core.tasks.worker import Worker
from apps.demo.models import Upload
from apps.demo.tasks import checksum_compute, uploads_expire
from apps.demo.uploads import UPLOADS_KEY, UPLOADS_LISTED, upload_bytes, uploads_lock

pytestmark = pytest.mark.django_db(transaction=True)


def upload_links(response) -> list[tuple[str, str]]:
    """(URL, name) of each link in the page's list of uploads."""
    listed = re.search(r'<ul id="upload-list">(.*?)</ul>', response.content.decode(), re.S)
    return re.findall(r'<a href="([^"]+)">([^<]+)</a>', listed[1]) if listed else []


def test_upload_is_saved_and_listed_after_a_redirect(client, media_root):
    response = client.post("/", {"file": SimpleUploadedFile("notes.txt", b"hello")})
    assert response.status_code == 302
    assert response["Location"] == "/"

    [(url, name)] = upload_links(client.get("/"))
    assert name == "notes.txt"
    assert re.fullmatch(r"/media/demo/[0-9a-f]{32}/notes\.txt", url)
    assert (media_root / url.removeprefix("/media/")).read_bytes() == b"hello"


def test_uploads_are_listed_per_visitor(client):
    client.post("/", {"file": SimpleUploadedFile("mine.txt", b"x")})
    other = type(client)()
    assert upload_links(other.get("/")) == []


def test_only_the_latest_uploads_are_listed(client):
    for i in range(UPLOADS_LISTED + 2):
        client.post("/", {"file": SimpleUploadedFile(f"{i}.txt", b"x")})
    names = [name for _, name in upload_links(client.get("/"))]
    assert names == [f"{i}.txt" for i in range(2, UPLOADS_LISTED + 2)]


def test_a_file_over_the_limit_is_a_400_with_the_reason(client, settings, media_root):
    settings.UPLOAD_MAX_BYTES = 1024
    response = client.post("/", {"file": SimpleUploadedFile("big.bin", b"x" * 1025)})
    assert response.status_code == 400
    assert 'id="upload-errors"' in response.content.decode()
    assert "files are limited to 1.0\xa0KB" in response.content.decode()
    assert not any(media_root.iterdir()), "the refused file was saved"


def test_a_post_without_a_file_is_a_400_with_the_reason(client):
    response = client.post("/", {})
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()


def test_a_body_over_django_s_limit_is_a_400_not_a_500(client, settings):
    # Behind nginx this is a 413 there; without it (or with a higher limit
    # there), Django's own limit still answers clearly.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = client.post("/", {"field": "x" * 2048})
    assert response.status_code == 400


def test_the_form_posts_a_file_with_a_csrf_token(client):
    html = client.get("/").content.decode()
    form = re.search(r'<form id="upload-form"[^>]*>(.*?)</form>', html, re.S)
    assert 'enctype="multipart/form-data"' in form[0]
    assert 'name="csrfmiddlewaretoken"' in form[1]
    assert 'type="file" name="file"' in form[1]


def test_storage_names_are_unguessable(client):
    client.post("/", {"file": SimpleUploadedFile("a.txt", b"1")})
    client.post("/", {"file": SimpleUploadedFile("a.txt", b"2")})
    urls = [url for url, _ in upload_links(client.get("/"))]
    assert len(set(urls)) == 2
    contents = {default_storage.open(url.removeprefix("/media/")).read() for url in urls}
    assert contents == {b"1", b"2"}


class RolledBack(Exception):
    pass


def test_an_upload_enqueues_one_checksum_task_in_the_request_s_transaction(client):
    assert client.post("/", {"file": SimpleUploadedFile("a.txt", b"a")}).status_code == 302
    [upload] = client.session[UPLOADS_KEY]
    [task] = DBTaskResult.objects.all()
    assert task.task_path == checksum_compute.module_path
    assert str(task.id) == upload["checksum_task"]
    assert task.args_kwargs["args"] == [upload["name"]]

    with pytest.raises(RolledBack), transaction.atomic():
        assert client.post("/", {"file": SimpleUploadedFile("b.txt", b"b")}).status_code == 302
        # Written in the request's transaction (not on commit, not on a
        # connection of its own): seen inside it...
        assert DBTaskResult.objects.count() == 2
        raise RolledBack
    # ...and gone with it.
    assert list(DBTaskResult.objects.all()) == [task]


def checksums(response) -> list[str]:
    """What the page shows as each upload's SHA-256."""
    return re.findall(r"SHA-256\s*<code[^>]*>([^<]*)</code>", response.content.decode())


def test_without_javascript_the_checksum_shows_on_reload(client):
    client.post("/", {"file": SimpleUploadedFile("notes.txt", b"hello")})
    page = client.get("/")
    assert checksums(page) == ["computing…"]
    assert "data-computing" in page.content.decode()  # what app.js waits for

    worker = Worker()
    worker.run_task(worker.claim())

    assert checksums(client.get("/")) == [hashlib.sha256(b"hello").hexdigest()]


def test_a_checksum_that_failed_shows_as_unavailable(client, settings, media_root):
    settings.TASK_MAX_ATTEMPTS = 1
    client.post("/", {"file": SimpleUploadedFile("gone.txt", b"x")})
    [upload] = client.session[UPLOADS_KEY]
    (media_root / upload["name"]).unlink()  # the task cannot read it

    worker = Worker()
    worker.run_task(worker.claim())

    page = client.get("/")
    assert checksums(page) == ["unavailable"]
    assert "data-computing" not in page.content.decode()


def test_uploads_noted_before_checksums_are_still_listed(client):
    name = "demo/0123456789abcdef0123456789abcdef/old.txt"
    session = client.session
    session[UPLOADS_KEY] = [name]
    session.save()
    page = client.get("/")
    assert upload_links(page) == [(f"/media/{name}", "old.txt")]
    assert checksums(page) == ["unavailable"]


@pytest.mark.parametrize(
    ("sent", "listed"),
    [("ü" * 200 + ".txt", "ü" * 48 + ".txt"), ("(*)", "file"), ("../../etc/passwd", "passwd")],
    ids=["400 bytes long", "no letter", "a path"],
)
def test_an_odd_file_name_is_stored_under_a_safe_one(client, media_root, sent, listed):
    response = client.post("/", {"file": SimpleUploadedFile(sent, b"hello")})
    assert response.status_code == 302
    [(url, name)] = upload_links(client.get("/"))
    assert name == listed
    assert (media_root / unquote(url.removeprefix("/media/"))).read_bytes() == b"hello"


# --- Limits: each client's and account's quota, and the store's -------------------


def post_file(client, name: str, content: bytes = b"x" * 100, **extra):
    return client.post("/", {"file": SimpleUploadedFile(name, content)}, **extra)


def upload_errors(response) -> str:
    errors = re.search(r'<ul id="upload-errors"[^>]*>(.*?)</ul>', response.content.decode(), re.S)
    assert errors, "the page shows no reason"
    return errors[1]


def test_what_a_file_is_counted_as_its_blocks_and_its_folder():
    assert [upload_bytes(size) for size in (0, 1, 4096, 4097)] == [4096, 8192, 8192, 12288]


def test_past_its_quota_a_client_gets_a_429_with_the_reason_and_keeps_its_files(
    client, settings, media_root
):
    settings.DEMO_UPLOAD_QUOTA_BYTES = 2 * upload_bytes(100)
    assert [post_file(client, f"{i}.txt").status_code for i in range(2)] == [302, 302]

    refused = post_file(client, "2.txt")

    assert refused.status_code == 429
    assert "as much as one visitor may keep here" in upload_errors(refused)
    # What was kept is still listed and stored; the refused file is not.
    kept = upload_links(refused)
    assert [name for _, name in kept] == ["0.txt", "1.txt"]
    assert all((media_root / url.removeprefix("/media/")).is_file() for url, _ in kept)
    assert len(list(media_root.glob("demo/*/*"))) == 2
    assert Upload.objects.count() == 2


def test_a_tiny_file_counts_as_the_blocks_it_takes(client, settings):
    # Counted by their bytes alone, files of one byte would be nearly free:
    # a quota would bound bytes, never the number of files.
    # A byte takes a 4 KiB block, and its folder another.
    settings.DEMO_UPLOAD_QUOTA_BYTES = 2 * 8192
    statuses = [post_file(client, f"{i}.txt", b"x").status_code for i in range(3)]
    assert statuses == [302, 302, 429]


def test_the_quota_is_each_client_s_an_ipv6_client_s_whole_64(client, settings):
    settings.DEMO_UPLOAD_QUOTA_BYTES = upload_bytes(100)
    assert post_file(client, "a.txt", REMOTE_ADDR="2001:db8::1").status_code == 302
    # Another address of the same /64 is the same client...
    assert post_file(client, "b.txt", REMOTE_ADDR="2001:db8::ffff").status_code == 429
    # ...and another /64, or another IPv4 address, another.
    assert post_file(client, "c.txt", REMOTE_ADDR="2001:db8:0:1::1").status_code == 302
    assert post_file(client, "d.txt", REMOTE_ADDR="192.0.2.1").status_code == 302


def test_a_signed_in_account_has_its_quota_from_any_address(client, settings, django_user_model):
    settings.DEMO_UPLOAD_QUOTA_BYTES = upload_bytes(100)
    client.force_login(django_user_model.objects.create_user("someone@example.com", "pass"))
    assert post_file(client, "a.txt", REMOTE_ADDR="192.0.2.1").status_code == 302
    assert post_file(client, "b.txt", REMOTE_ADDR="198.51.100.1").status_code == 429
    # Signed out, from that other address: a client with room of its own.
    client.logout()
    assert post_file(client, "c.txt", REMOTE_ADDR="198.51.100.1").status_code == 302


def test_when_the_store_is_full_every_client_gets_a_413_with_the_reason(client, settings):
    settings.DEMO_UPLOADS_MAX_BYTES = upload_bytes(100)
    assert post_file(client, "a.txt", REMOTE_ADDR="192.0.2.1").status_code == 302
    refused = post_file(client, "b.txt", REMOTE_ADDR="198.51.100.1")
    assert refused.status_code == 413
    assert "The uploads kept here are full" in upload_errors(refused)
    assert Upload.objects.count() == 1


def test_the_check_and_the_save_hold_a_lock_other_uploads_wait_for(client, settings):
    # Two uploads at once must not both take the last room: the second is
    # checked only once the first has committed.
    settings.DEMO_UPLOAD_QUOTA_BYTES = upload_bytes(100)
    answers = []

    def upload():
        try:
            answers.append(post_file(type(client)(), "a.txt"))
        finally:
            connection.close()  # the thread's own

    with transaction.atomic():
        uploads_lock()
        other = threading.Thread(target=upload)
        other.start()
        other.join(timeout=1)
        assert other.is_alive(), "the upload did not wait for the lock"
        Upload.objects.create(
            name="demo/taken/by-the-first.txt",
            bytes=upload_bytes(100),
            client="127.0.0.1",
            created_at=timezone.now(),
        )
    other.join(timeout=10)
    assert [answer.status_code for answer in answers] == [429]


def test_a_client_over_its_quota_has_room_again_once_its_files_expire(client, settings):
    settings.DEMO_UPLOAD_QUOTA_BYTES = upload_bytes(100)
    assert post_file(client, "a.txt").status_code == 302
    assert post_file(client, "b.txt").status_code == 429

    settings.DEMO_UPLOADS_KEEP = timedelta(0)
    uploads_expire.call()

    assert post_file(client, "b.txt").status_code == 302


def test_uploads_kept_longer_than_their_time_are_listed_no_more(client, settings):
    post_file(client, "old.txt")
    settings.DEMO_UPLOADS_KEEP = timedelta(0)  # as if a day had passed
    assert upload_links(client.get("/")) == []
