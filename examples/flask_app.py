"""A Flask app whose views schedule jobs with the sync API, and a worker that runs them inside the
app's context (handlers see `current_app` and its config). From the repository root,
with `pip install 'jobmaster[flask]'`:

    jobmaster worker --app examples.flask_app:jm              # the worker
    flask --app examples.flask_app run                        # the web app
    curl -X POST 'localhost:5000/signup?email=ada@example.com'  # -> {"job_id": "..."}
    curl localhost:5000/jobs/<job_id>                         # -> {"status": "Succeeded", ...}
    curl localhost:5000/jobs/<job_id>/result                  # waits for it: {"result": {...}}

It runs on an SQLite file in the current directory; EXAMPLES_MASTER names another master (a
PostgreSQL URL for several machines), EXAMPLES_CLUSTER another cluster id.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, request

from examples._shared import cluster, master_or_sqlite
from jobmaster import JobContext, JobMaster
from jobmaster.contrib.flask import JobMasterFlask, current_jobmaster

jm = JobMaster("Flask-Cluster", workers=[{"name": "flask-jobs"}])
jobs = JobMasterFlask(jm)


@jm.handler(max_retries=5, timeout="30s")
def send_welcome(ctx: JobContext, email: str) -> dict[str, str]:
    sender = current_app.config["MAIL_SENDER"]  # the app's config: handlers run in its context
    ctx.logger.info("welcome mail to %s from %s", email, sender)
    return {"sent_to": email, "sent_from": sender}


def create_app() -> Flask:
    app = Flask(__name__)
    app.config["MAIL_SENDER"] = "welcome@example.com"
    app.config["JOBMASTER"] = {"cluster_id": cluster("Flask-Cluster"), "master": master_or_sqlite()}
    jobs.init_app(app)

    @app.post("/signup")
    def signup() -> dict[str, str]:
        job_id = current_jobmaster().sync.schedule(send_welcome, {"email": request.args["email"]})
        return {"job_id": job_id}

    @app.get("/jobs/<job_id>")
    def job(job_id: str) -> dict[str, Any]:
        found = current_jobmaster().sync.get_job(job_id)
        return {"status": found.status.name, "attempts": found.attempts}

    @app.get("/jobs/<job_id>/result")
    def job_result(job_id: str) -> dict[str, Any]:
        return {"result": current_jobmaster().sync.result(job_id, timeout="30s")}

    return app


#: What `flask --app examples.flask_app run` serves, and what the worker's handlers run inside.
app = create_app()
