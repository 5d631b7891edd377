"""Settings both variants share. The test that runs this project (tests/jm_django/) names the
databases and the cluster in JMTEST_* variables, so concurrent test runs never share them."""

import os

SECRET_KEY = "tests-only"
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["testserver"]
ROOT_URLCONF = "shop.urls"
INSTALLED_APPS = ["jobmaster.contrib.django", "shop"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
CLUSTER_ID = os.environ.get("JMTEST_DJANGO_CLUSTER", "django-shop")

#: What every variant's jobmaster OPTIONS share: a quick retry, so a failing task ends in seconds.
JOBMASTER = {
    "cluster_id": CLUSTER_ID,
    "default_max_retries": 1,
    "retry_backoff_base": "0.2s",
    "retry_backoff_cap": "0.5s",
}
QUEUES = ["default", "emails"]
