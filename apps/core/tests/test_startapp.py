"""`manage.py startapp NAME` (and `make app NAME=...`): the app in apps/, with
its AppConfig named for where it is, installed."""

import shutil

import pytest
from django.core.management import CommandError, call_command

from apps.core.management.commands import startapp
from project.env import BASE_DIR


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project folder with apps/ and a copy of the real base settings."""
    (tmp_path / "apps").mkdir()
    settings = tmp_path / "base.py"
    shutil.copy(BASE_DIR / "project" / "settings" / "base.py", settings)
    monkeypatch.setattr(startapp, "BASE_DIR", tmp_path)
    monkeypatch.setattr(startapp, "SETTINGS", settings)
    return tmp_path


def test_startapp_makes_the_app_in_apps_and_installs_it(project):
    call_command("startapp", "orders")

    app = project / "apps" / "orders"
    assert 'name = "apps.orders"' in (app / "apps.py").read_text()
    assert "class OrdersConfig(AppConfig)" in (app / "apps.py").read_text()
    for path in ("models.py", "urls.py", "migrations/__init__.py", "tests/__init__.py"):
        assert (app / path).is_file(), path
    settings = (project / "base.py").read_text()
    installed = settings.split("INSTALLED_APPS = [", 1)[1].split("\n]", 1)[0]
    assert installed.rstrip().endswith('"apps.orders",')
    assert settings.count('"apps.orders"') == 1


def test_startapp_refuses_an_app_that_exists(project):
    (project / "apps" / "orders").mkdir()
    with pytest.raises(CommandError, match="exists already"):
        call_command("startapp", "orders")


def test_startapp_with_a_directory_is_djangos_own(project, tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    call_command("startapp", "orders", str(target))
    assert "name = 'orders'" in (target / "apps.py").read_text()
    assert '"apps.orders"' not in (project / "base.py").read_text()
