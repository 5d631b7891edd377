"""examples/django_shop runs with the commands in its docstring: migrate, a worker started as
`jobmaster worker --django`, `runserver`, and HTTP requests that enqueue a task and read its result.
Also the worker command's own errors for Django."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from cli.cli_helpers import assert_one_line_error, run_cli

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "django_shop"
PROJECT = Path(__file__).resolve().parents[1] / "django_project"
DEADLINE = 90.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _http(url: str, form: dict[str, str] | None = None) -> Any:
    data = None if form is None else urllib.parse.urlencode(form).encode()
    with urllib.request.urlopen(url, data=data, timeout=10) as response:
        return json.loads(response.read())


def _until(what: str, check: Any) -> Any:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        try:
            value = check()
        except (urllib.error.URLError, ConnectionError):
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_django_example_runs_as_its_docstring_says(tmp_path: Path) -> None:
    env = {**os.environ, "DJANGO_SHOP_DATA": str(tmp_path), "DJANGO_SETTINGS_MODULE": "shop_site.settings"}
    subprocess.run([sys.executable, "manage.py", "migrate"], cwd=EXAMPLE, env=env, check=True, timeout=120)
    port = _free_port()
    logs = {name: (tmp_path / f"{name}.log").open("wb") for name in ("worker", "server")}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "jobmaster.cli.main", "worker", "--django"],
            cwd=EXAMPLE,
            env=env,
            stdout=logs["worker"],
            stderr=subprocess.STDOUT,
        ),
        subprocess.Popen(
            [sys.executable, "manage.py", "runserver", str(port), "--noreload"],
            cwd=EXAMPLE,
            env=env,
            stdout=logs["server"],
            stderr=subprocess.STDOUT,
        ),
    ]
    try:
        base = f"http://127.0.0.1:{port}"
        enqueued = _until("the server", lambda: _http(f"{base}/greet/", {"name": "Ada"}))
        done = _until(
            "the greeting task",
            lambda: (body := _http(f"{base}/results/{enqueued['result_id']}/"))["status"] == "SUCCESSFUL"
            and body,
        )
        assert done == {"status": "SUCCESSFUL", "attempts": 1, "return_value": "Hello, Ada!"}
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(DEADLINE) for process in processes]
    assert codes[0] == 0, (tmp_path / "worker.log").read_text()


def test_the_worker_without_an_app_or_django_says_what_to_give() -> None:
    assert_one_line_error(run_cli("worker"), 2, "give the app with --app MODULE:ATTR (or --django")


def test_the_worker_names_a_missing_tasks_entry(tmp_path: Path) -> None:
    env = {"DJANGO_SETTINGS_MODULE": "shop.settings_sqlite", "JMTEST_DJANGO_DIR": str(tmp_path)}
    result = run_cli("worker", "--django", "--backend", "nope", cwd=PROJECT, env=env)
    assert_one_line_error(result, 2, "no TASKS entry 'nope' (configured: default)")


def test_the_worker_without_django_settings_says_so(tmp_path: Path) -> None:
    result = run_cli("worker", "--django", cwd=tmp_path, env={"DJANGO_SETTINGS_MODULE": ""})
    assert_one_line_error(result, 2, "setting up Django failed: ImproperlyConfigured")
