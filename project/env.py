"""The one place that reads the environment.

Every settings module (and deploy/gunicorn.conf.py) imports `env` from here;
nothing else reads os.environ. Each variable is documented in .env.example and
in docs/configuration.md's table, and project/tests/test_settings.py keeps the
three in step.

FileAwareEnv also reads `<NAME>_FILE`: when it is set, the value comes from that
file. The compose stack uses it for the secret key kept in the `secrets` volume,
and Kubernetes can mount Secrets the same way.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.FileAwareEnv()
