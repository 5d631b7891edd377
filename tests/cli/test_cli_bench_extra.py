"""The bench commands need the `bench` extra (psutil); without it they say so and the rest of the
command line works as before."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cli_helpers import assert_one_line_error

#: `jobmaster` in an environment installed without the bench extra.
WITHOUT_PSUTIL = """
import sys


class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "psutil":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NotInstalled())
from jobmaster.cli.main import main

main()
"""


def _jobmaster(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_PSUTIL, *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_the_bench_commands_name_the_extra_they_need(tmp_path: Path) -> None:
    extra = "needs the 'bench' extra: pip install 'jobmaster[bench]'"
    assert_one_line_error(_jobmaster("bench", "--jobs", "10", cwd=tmp_path), 1, f"`jobmaster bench` {extra}")
    assert_one_line_error(
        _jobmaster("bench-agent", "--agent", "sqlite:///a.db", cwd=tmp_path),
        1,
        f"`jobmaster bench-agent` {extra}",
    )
    assert_one_line_error(_jobmaster("bench", "--help", cwd=tmp_path), 1, f"`jobmaster bench` {extra}")


def test_the_other_commands_work_without_the_bench_extra(tmp_path: Path) -> None:
    listing = _jobmaster("--help", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert "bench-agent" in listing.stdout
    upgraded = _jobmaster(
        "db", "upgrade", "--master", "sqlite:///jobs.db", "--cluster", "c", "--json", cwd=tmp_path
    )
    assert upgraded.returncode == 0, upgraded.stderr
    assert '"schema_version"' in upgraded.stdout
    demo = _jobmaster("demo", "--jobs", "50", "--json", cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
