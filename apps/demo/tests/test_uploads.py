"""The upload form on the home page, through Django's test client (no nginx),
with uploads saved in a temporary MEDIA_ROOT, and their checksums computed by
the platform's worker (one turn of its loop)."""

import hashlib
import re
from urllib.parse import unquote

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django_tasks_db.models import DBTaskResult

from apps.core.tasks.worker import Worker
from apps.demo.tasks import checksum_compute
from apps.demo.uploads import UPLOADS_KEY, UPLOADS_LISTED

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
