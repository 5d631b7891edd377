"""The Django app (`INSTALLED_APPS = [..., "jobmaster.contrib.django"]`) that brings the
`jobmaster_worker` management command."""

from __future__ import annotations

from django.apps import AppConfig


class JobMasterConfig(AppConfig):
    name = "jobmaster.contrib.django"
    label = "jobmaster"
    verbose_name = "JobMaster"
