"""`manage.py startapp NAME` (and `make app NAME=...`): the app in apps/, with
its AppConfig named for where it is, installed."""

import shutil
import uuid

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


@pytest.fixture
def name():
    """An app name no project has (a fork following docs/development.md has `orders`)."""
    return f"probe_{uuid.uuid4().hex[:8]}"


def test_startapp_makes_the_app_in_apps_and_installs_it(project, name):
    call_command("startapp", name)

    app = project / "apps" / name
    config = (app / "apps.py").read_text()
    assert f'name = "apps.{name}"' in config
    assert f"class {name.title().replace('_', '')}Config(AppConfig)" in config
    for path in ("models.py", "urls.py", "migrations/__init__.py", "tests/__init__.py"):
        assert (app / path).is_file(), path
    settings = (project / "base.py").read_text()
    installed = settings.split("INSTALLED_APPS = [", 1)[1].split("\n]", 1)[0]
    assert installed.rstrip().endswith(f'"apps.{name}",')
    assert settings.count(f'"apps.{name}"') == 1


def test_startapp_refuses_an_app_that_exists(project, name):
    (project / "apps" / name).mkdir()
    with pytest.raises(CommandError, match="exists already"):
        call_command("startapp", name)


def test_startapp_with_a_directory_is_djangos_own(project, name, tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    call_command("startapp", name, str(target))
    assert f"name = '{name}'" in (target / "apps.py").read_text()
    assert f'"apps.{name}"' not in (project / "base.py").read_text()
