import pytest
from asgiref.sync import sync_to_async
from django.db import connections


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Uploads saved in a folder of the test's own."""
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture(autouse=True)
async def thread_connections_closed():
    """Async tests (and consumers) reach PostgreSQL from asgiref's one thread
    for sync code: close its connections after each test, as a request's end
    would, or the test database cannot be dropped at the end of the run."""
    yield
    await sync_to_async(connections.close_all)()
