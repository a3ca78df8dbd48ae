#!/usr/bin/env python
"""Django's command-line utility. Defaults to the dev settings; the image sets
DJANGO_SETTINGS_MODULE=project.settings.production."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings.dev")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
