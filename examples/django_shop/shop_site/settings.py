"""Settings of the example: SQLite files for Django and for the jobmaster master.

For PostgreSQL, point both at one database and let enqueue join Django's transactions:

    DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": "shop", ...}}
    TASKS["default"]["OPTIONS"] |= {"master": "postgresql://user@host/shop", "database": "default"}
"""

import os
from pathlib import Path

DATA = Path(os.environ.get("DJANGO_SHOP_DATA", Path(__file__).resolve().parents[1]))

SECRET_KEY = "example-only"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
ROOT_URLCONF = "shop_site.urls"
INSTALLED_APPS = ["jobmaster.contrib.django", "greetings"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": DATA / "db.sqlite3"}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

TASKS = {
    "default": {
        "BACKEND": "jobmaster.contrib.django.JobMasterBackend",
        "QUEUES": ["default", "emails"],
        # The keywords of JobMaster(...): any jobmaster setting goes here.
        "OPTIONS": {"cluster_id": "django-shop", "master": f"sqlite:///{DATA / 'jobmaster.db'}"},
    }
}
