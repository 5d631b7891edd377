"""The Flask app the Flask tests use, made by a factory as Flask apps are; JMTEST_FLASK_MASTER and
JMTEST_FLASK_CLUSTER name the cluster, and the worker process imports this module (`app` is made at
import) and runs `jobmaster worker --app flask_site:jm`."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, current_app, request

from jobmaster import JobMaster
from jobmaster.contrib.flask import JobMasterFlask, current_jobmaster

jm = JobMaster("flask-site", workers=[{"name": "flask"}], heartbeat_interval=0.3)
jobs = JobMasterFlask(jm)


def _record(note: str) -> str:
    """What a handler can only know inside the app's context: the app's name and config."""
    line = f"{note} {os.getpid()} {current_app.name} {current_app.config['SITE_LABEL']}"
    with open(current_app.config["RUNS_FILE"], "a") as runs:
        runs.write(line + "\n")
    return line


@jm.handler
async def record(note: str) -> str:
    return _record(note)


@jm.handler
def record_sync(note: str) -> str:
    """A sync handler runs in a thread: the app context must reach it there too."""
    return _record(note)


def create_app(**config: Any) -> Flask:
    """The app; `config` overrides the settings read from the environment (tests pass theirs)."""
    app = Flask("flask_site")
    app.config.update(
        SITE_LABEL="site",
        RUNS_FILE=os.environ.get("JMTEST_FLASK_RUNS", "runs.txt"),
        JOBMASTER={
            "cluster_id": os.environ.get("JMTEST_FLASK_CLUSTER", "flask-site"),
            "master": os.environ.get("JMTEST_FLASK_MASTER", "sqlite:///flask-site.db"),
        },
    )
    app.config.update(config)
    jobs.init_app(app)

    @app.post("/record")
    def schedule_record() -> dict[str, str]:
        handler = record_sync if request.args.get("sync") else record
        return {"job_id": current_jobmaster().sync.schedule(handler, {"note": request.args["note"]})}

    @app.get("/jobs/<job_id>")
    def job_status(job_id: str) -> dict[str, str]:
        return {"status": current_jobmaster().sync.get_job(job_id).status.name}

    return app


if os.environ.get("JMTEST_FLASK_WORKER") == "1":
    app = create_app()
