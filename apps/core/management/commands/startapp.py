import re
from pathlib import Path

from django.core.management.base import CommandError
from django.core.management.commands.startapp import Command as DjangoStartApp

from project.env import BASE_DIR

APP_TEMPLATE = Path(__file__).resolve().parents[2] / "app_template"
SETTINGS = BASE_DIR / "project" / "settings" / "base.py"
INSTALLED_APPS = re.compile(r"^INSTALLED_APPS = \[\n.*?^\]", re.MULTILINE | re.DOTALL)


class Command(DjangoStartApp):
    help = (
        "Creates apps/<name>/ from the project's app template (an AppConfig named "
        "apps.<name>, migrations/, tests/) and adds it to INSTALLED_APPS. Given a "
        "directory or --template, it is Django's own startapp."
    )

    # **options alone, as Django's own startapp: not TemplateCommand.handle's
    # signature, which django-stubs' startapp silences the same way.
    def handle(self, **options):  # type: ignore[override]
        if options["directory"] or options["template"]:
            return super().handle(**options)
        name = options["name"]
        directory = BASE_DIR / "apps" / name
        self.validate_name(name)
        if directory.exists():
            raise CommandError(f"apps/{name}/ exists already.")
        directory.mkdir()
        super().handle(**{**options, "directory": str(directory), "template": str(APP_TEMPLATE)})
        installed_apps_add(f"apps.{name}")
        self.stdout.write(f"Made apps/{name}/, and added apps.{name} to INSTALLED_APPS.")


def installed_apps_add(app: str) -> None:
    """Add an app at the end of INSTALLED_APPS in base.py, as a person would."""
    text = SETTINGS.read_text()
    block = INSTALLED_APPS.search(text)
    if block is None:
        raise CommandError(f"No INSTALLED_APPS list in {SETTINGS}: add {app!r} by hand.")
    installed = block[0][: -len("]")] + f'    "{app}",\n]'
    SETTINGS.write_text(text[: block.start()] + installed + text[block.end() :])
