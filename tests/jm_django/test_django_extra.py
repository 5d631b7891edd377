"""Django is optional: importing the integration without it names the extra that installs it."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_importing_the_django_integration_without_django_names_the_extra() -> None:
    source = textwrap.dedent(
        """
        import sys

        class NotInstalled:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("django", "django_tasks"):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return None

        sys.meta_path.insert(0, NotInstalled())
        try:
            import jobmaster.contrib.django
        except ModuleNotFoundError as exc:
            print(exc)
        """
    )
    result = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "jobmaster.contrib.django needs the 'django' extra (django is not installed):"
        " pip install 'jobmaster[django]'"
    )
