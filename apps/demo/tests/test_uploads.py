"""The upload form on the home page, through Django's test client (no nginx),
with uploads saved in a temporary MEDIA_ROOT."""

import re

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.demo.uploads import UPLOADS_LISTED

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


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
