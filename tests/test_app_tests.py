"""Whose tests are whose. The platform's live in apps/core/tests/, project/tests/
and tests/: a fork keeps them, and edits them only where it changes the
platform. Each app's own live in its apps/<app>/tests/ (`startapp` makes the
folder). An app's tests use the platform's code and the toolkit every app's
tests have, tests/stack.py (the running stack, through nginx, and its
helpers; conftest.py registers it), and nothing from the platform's test
modules: those change with the platform, and an app's tests must not break when
they do."""

import ast
from pathlib import Path

from project.env import BASE_DIR

TOOLKIT = "tests.stack"
PLATFORM_TESTS = ("apps.core.tests", "project.tests", "tests")


def app_test_files() -> list[Path]:
    apps = [path for path in (BASE_DIR / "apps").iterdir() if path.name != "core"]
    return sorted(file for app in apps for file in (app / "tests").rglob("*.py"))


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return modules


def test_an_apps_tests_take_only_the_toolkit_from_the_platforms_tests():
    taken = [
        f"{path.relative_to(BASE_DIR)}: {module}"
        for path in app_test_files()
        for module in sorted(imported_modules(path))
        if module != TOOLKIT
        and any(module == tests or module.startswith(f"{tests}.") for tests in PLATFORM_TESTS)
    ]
    assert taken == [], f"use {TOOLKIT} (or move what is needed into it): {taken}"
