"""Serving a web app with a real server process, and running a real worker next to it (the web
integration tests and the web examples)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

from helpers import wait_for


class Served:
    """A server process started with its log in a file; `url` once it listens."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path, cwd: Path) -> None:
        self.log = log
        output = log.open("wb")
        self.proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT)
        self.url = ""

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_listening(self, pattern: str, timeout: float = 60.0) -> str:
        """Wait for the log line that names the address (servers started on port 0 say which)."""

        def listening() -> bool:
            assert self.proc.poll() is None, f"server exited {self.proc.returncode}:\n{self.text()}"
            found = re.search(pattern, self.text())
            if found:
                self.url = found.group(1)
            return found is not None

        wait_for(listening, f"server listening ({self.log.name})", timeout)
        return self.url

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, as a process manager stops it; returns its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"{self.log.name} ran on {timeout:g}s:\n{self.text()}") from None


def uvicorn(app: str, env: dict[str, str], log: Path, cwd: Path, *options: str) -> Served:
    """`uvicorn app --port 0 [options]` run in `cwd`, as a user runs it, listening once this returns."""
    command = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", "0", *options]
    served = Served(command, env, log, cwd)
    served.wait_listening(r"Uvicorn running on (http://127\.0\.0\.1:\d+)")
    return served


def worker(app: str, env: dict[str, str], log: Path, cwd: Path) -> Served:
    """`jobmaster worker --app app` run in `cwd`, a real worker process."""
    command = [sys.executable, "-m", "jobmaster.cli.main", "worker", "--app", app]
    return Served(command, env, log, cwd)
