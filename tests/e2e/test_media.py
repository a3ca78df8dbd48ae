"""User uploads, served by nginx from the media volume, safely: whatever a file
holds, it never runs as a page of the site. Files are put in the volume as
the app saves them (default_storage, in a web container), so these tests need
no form of any app's."""

import http.client
import json
import struct
import uuid
import zlib
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

MEDIA_CSP = {"default-src": "'none'", "frame-ancestors": "'none'", "sandbox": ""}

HTML = b"<!doctype html><script>document.title = 'ran as the site'</script>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.domain)</script></svg>'


def png() -> bytes:
    """A valid 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def media_save(stack, files: dict[str, bytes]) -> dict[str, str]:
    """Save files with the app's own storage, in a web container as its user
    (so with its permissions), under a folder of their own; their URLs by name."""
    folder = f"tests/{uuid.uuid4().hex}"
    code = f"""
import json, django
django.setup()
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
files = {files!r}
urls = {{n: default_storage.url(default_storage.save("{folder}/" + n, ContentFile(b)))
        for n, b in files.items()}}
print(json.dumps(urls))
"""
    web = stack.containers("web")[0]
    return json.loads(stack.run_python(web, code).splitlines()[-1])


UPLOADED = {
    "page.html": HTML,
    "drawing.svg": SVG,
    "script.js": b"document.title = 'ran as the site'",
    "style.CSS": b"body { display: none }",
    "noextension": b"text",
}


@pytest.fixture(scope="module")
def media_urls(stack):
    return media_save(stack, {**UPLOADED, "pixel.png": png(), "PIXEL.PNG": png()})


def policy(response) -> dict:
    return {
        name: value.strip()
        for name, _, value in (
            directive.strip().partition(" ")
            for directive in response.headers["Content-Security-Policy"].split(";")
        )
    }


def assert_safe(response):
    """What every response under /media/ carries, file or error."""
    assert policy(response) == MEDIA_CSP
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"


@pytest.mark.parametrize("name", UPLOADED)
def test_anything_but_a_raster_image_is_a_download_of_no_runnable_type(stack, media_urls, name):
    response = stack.browser().get(stack.url(media_urls[name]))
    assert response.status_code == 200
    assert response.content == UPLOADED[name]
    # Not text/html, image/svg+xml, text/javascript or text/css: with
    # nosniff, no browser runs it as a script or applies it as a style.
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"] == "attachment"
    assert_safe(response)


@pytest.mark.parametrize("name", ["pixel.png", "PIXEL.PNG"])
def test_raster_images_open_in_the_browser(stack, media_urls, name):
    response = stack.browser().get(stack.url(media_urls[name]))
    assert response.status_code == 200
    assert response.content == png()
    assert response.headers["Content-Type"] == "image/png"
    assert "Content-Disposition" not in response.headers
    assert_safe(response)


def test_the_app_s_urls_are_nginx_s(media_urls):
    assert all(url.startswith("/media/tests/") for url in media_urls.values())


@pytest.mark.parametrize("folder", ["/media/", "/media/tests/"])
def test_folders_are_never_listed(stack, media_urls, folder):
    response = stack.browser().get(stack.url(folder))
    assert response.status_code in (403, 404)
    assert "pixel.png" not in response.text and "tests" not in response.text
    assert_safe(response)


def test_an_uploaded_index_html_is_not_a_folder_s_page(stack):
    [url] = media_save(stack, {"index.html": HTML}).values()
    folder = url.removesuffix("index.html")
    assert stack.browser().get(stack.url(folder)).status_code in (403, 404)


def test_only_get_and_head(stack, media_urls):
    url = stack.url(media_urls["pixel.png"])
    browser = stack.browser()
    assert browser.head(url).status_code == 200
    for method in ("POST", "PUT", "DELETE"):
        response = browser.request(method, url, data=b"x")
        assert response.status_code in (403, 405), method
        assert_safe(response)
    assert browser.get(url).content == png()  # unchanged


def raw_get(stack, path: str) -> tuple[int, bytes]:
    """GET a path exactly as written: HTTP libraries resolve ".." themselves."""
    host, _, port = stack.address.partition(":")
    connection = http.client.HTTPConnection(host, int(port or 80), timeout=10)
    try:
        connection.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", stack.host)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize(
    "path",
    [
        "/media/../secrets/django_secret_key",
        "/media/%2e%2e/%2e%2e/secrets/django_secret_key",
        "/media/..%2f..%2fsecrets/django_secret_key",
        "/media/../../etc/passwd",
        "/media/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        # Outside the volume, beside it: what an `alias` without its slash serves.
        "/media../static/core/favicon.svg",
    ],
)
def test_nothing_outside_the_volume_can_be_reached(stack, path):
    status, body = raw_get(stack, path)
    assert 400 <= status < 500, (status, body[:200])
    secret = Path("/secrets/django_secret_key").read_bytes().strip()
    assert secret not in body
    assert b"root:" not in body
    assert b"<svg" not in body
