"""Django's task framework on jobmaster: `TASKS = {"default": {"BACKEND":
"jobmaster.contrib.django.JobMasterBackend", ...}}` (docs/django.md).

Add `"jobmaster.contrib.django"` to INSTALLED_APPS for the `jobmaster_worker` management command.
"""

from jobmaster.contrib import missing_extra

try:
    import django  # noqa: F401 - every module below imports it
except ModuleNotFoundError as exc:
    raise missing_extra("jobmaster.contrib.django", "django", exc) from None

from jobmaster.contrib.django.backend import JobMasterBackend

__all__ = ["JobMasterBackend"]
