"""jobmaster.contrib.flask with Flask's test client: a view schedules through the sync API, and a real
worker process runs the job inside the app's context (SQLite and PostgreSQL); inline mode in a request;
the extension's bad inputs."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask_site import create_app, jm, jobs, record

from helpers import wait_for
from jobmaster import ConfigError, JobMaster
from jobmaster.contrib.flask import JobMasterFlask, current_jobmaster
from jobmaster.testing import assert_scheduled, inline
from serving import worker


@pytest.fixture
def site_env(master_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The settings of the site (a fresh cluster) as the worker process reads them."""
    yield {
        "JMTEST_FLASK_MASTER": master_url,
        "JMTEST_FLASK_CLUSTER": f"flask-{uuid.uuid4().hex[:10]}",
        "JMTEST_FLASK_RUNS": str(tmp_path / "runs.txt"),
    }
    jm.sync.close()  # the next test's app points the JobMaster elsewhere


def _app(env: dict[str, str]) -> Flask:
    """The web process's app (in the test's process) for the same settings as the worker's."""
    settings = {"cluster_id": env["JMTEST_FLASK_CLUSTER"], "master": env["JMTEST_FLASK_MASTER"]}
    return create_app(TESTING=True, RUNS_FILE=env["JMTEST_FLASK_RUNS"], JOBMASTER=settings)


def test_a_view_schedules_and_a_real_worker_runs_in_the_app_context(
    site_env: dict[str, str], tmp_path: Path
) -> None:
    client = _app(site_env).test_client()
    env = {**os.environ, **site_env, "JMTEST_FLASK_WORKER": "1"}
    consumer = worker("flask_site:jm", env, tmp_path / "worker.log", Path(__file__).parent)
    try:
        ids = [
            client.post("/record", query_string={"note": "async"}).json["job_id"],
            client.post("/record", query_string={"note": "sync", "sync": "1"}).json["job_id"],
        ]
        for job_id in ids:
            url = f"/jobs/{job_id}"
            wait_for(lambda: client.get(url).json["status"] == "Succeeded", f"job {job_id} succeeded")  # noqa: B023
    finally:
        code = consumer.stop()
    assert code == 0, consumer.text()
    lines = sorted(Path(site_env["JMTEST_FLASK_RUNS"]).read_text().splitlines())
    pid = consumer.proc.pid
    assert lines == [f"async {pid} flask_site site", f"sync {pid} flask_site site"]


def test_inline_mode_runs_the_handler_in_the_request_with_the_app_context(tmp_path: Path) -> None:
    runs = tmp_path / "runs.txt"
    app = create_app(TESTING=True, RUNS_FILE=str(runs), SITE_LABEL="inline-test")
    with inline(jm) as mode:
        response = app.test_client().post("/record", query_string={"note": "now"})
        assert response.status_code == 200
        assert_scheduled(record, {"note": "now"}, count=1)
    assert mode.results(record) == [f"now {os.getpid()} flask_site inline-test"]
    assert runs.read_text() == f"now {os.getpid()} flask_site inline-test\n"
    assert not jm.is_open  # inline mode opened no database


def test_bad_inputs_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs a JobMaster object, got str"):
        JobMasterFlask("flask_site:jm")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="already has a JobMasterFlask"):
        JobMasterFlask(jm)
    app = create_app(RUNS_FILE=str(tmp_path / "runs.txt"))
    with pytest.raises(ConfigError, match="already initialised on the Flask app 'flask_site'"):
        jobs.init_app(app)
    other = JobMasterFlask(JobMaster("flask-other"))
    for value, message in (
        ("sqlite:///x.db", "must be a dict of JobMaster settings, got str"),
        ({"mastr": "sqlite:///x.db"}, r"\['JOBMASTER'\]: unknown setting `mastr`; did you mean master\?"),
    ):
        bad = Flask("bad")
        bad.config["JOBMASTER"] = value
        with pytest.raises(ConfigError, match=message):
            other.init_app(bad)
    with pytest.raises(ConfigError, match="needs a Flask app context"):
        current_jobmaster()
    with Flask("bare").app_context(), pytest.raises(ConfigError, match="'bare' has no JobMaster"):
        current_jobmaster()
