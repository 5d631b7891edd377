"""Helpers to run the e2e app as real OS processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent


class Processes:
    def __init__(self, master: str, cluster: str, logs: Path) -> None:
        self.master = master
        self.cluster = cluster
        self.logs = logs
        self.running: list[subprocess.Popen[bytes]] = []

    def env(self, workers: list[dict[str, Any]]) -> dict[str, str]:
        return {
            **os.environ,
            "E2E_MASTER": self.master,
            "E2E_CLUSTER": self.cluster,
            "E2E_WORKERS": json.dumps(workers),
            "PYTHONPATH": str(HERE),
        }

    def worker(self, name: str, workers: list[dict[str, Any]]) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the process
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "e2e_app.py"), "worker"],
            env=self.env(workers),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.running.append(proc)
        return proc

    def publish(self, plan: list[dict[str, Any]], timeout: float = 120) -> dict[str, list[str]]:
        path = self.logs / "plan.json"
        path.write_text(json.dumps(plan))
        subprocess.run(
            [sys.executable, str(HERE / "e2e_app.py"), "publish", str(path)],
            env=self.env([]),
            check=True,
            timeout=timeout,
        )
        ids: dict[str, list[str]] = json.loads(Path(str(path) + ".ids").read_text())
        return ids

    def stop_all(self, timeout: float = 30) -> list[int]:
        for proc in self.running:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = []
        for proc in self.running:
            try:
                codes.append(proc.wait(timeout))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes.append(proc.wait())
        self.running.clear()
        return codes


@pytest.fixture
def processes(pg_urls: dict[str, str], cluster_id: str, tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(pg_urls["master"], cluster_id, tmp_path)
    yield procs
    procs.stop_all()
