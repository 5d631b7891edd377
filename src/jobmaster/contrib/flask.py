"""Flask: an extension that keeps the app's JobMaster in `app.extensions` and runs handlers inside the
app's context.

```python
from flask import Flask
from jobmaster.contrib.flask import JobMasterFlask, current_jobmaster

jobs = JobMasterFlask(jm)                      # module level, next to the handlers

def create_app() -> Flask:
    app = Flask(__name__)
    app.config["JOBMASTER"] = {"master": "postgresql://db-host/jobs"}   # optional settings
    jobs.init_app(app)
    return app

@app.post("/signup")
def signup():                                  # views use the sync API
    return {"job_id": current_jobmaster().sync.schedule(send_welcome, {"email": ...})}
```

The worker imports a module that creates the app (`app = create_app()` at module level) and runs
`jobmaster worker --app that_module:jm`; every handler then runs inside `app.app_context()`, so
`current_app`, its config and the extensions bound to it work in handlers as in views.
"""

from __future__ import annotations

import weakref
from typing import Any

from jobmaster.contrib import missing_extra

try:
    import flask
except ModuleNotFoundError as exc:
    raise missing_extra(__name__, "flask", exc) from exc

from jobmaster.app import JobMaster
from jobmaster.errors import ConfigError
from jobmaster.jobs.model import Job
from jobmaster.middleware import RunNext

#: The key of the app's JobMaster in `app.extensions`, and of its settings in `app.config`.
EXTENSION = "jobmaster"
CONFIG_KEY = "JOBMASTER"
_UNSET = object()
#: The extension of each JobMaster: one each, since each adds a run middleware.
_EXTENSIONS: weakref.WeakKeyDictionary[JobMaster, JobMasterFlask] = weakref.WeakKeyDictionary()


class JobMasterFlask:
    """The Flask extension of one JobMaster: `init_app(app)` for each app that uses it.

    Handlers run in the context of the app initialised last in the process (a worker creates one;
    a test suite creates one per test), unless an app context is active already (inline mode inside
    a request), which they then keep.
    """

    def __init__(self, jm: JobMaster, app: flask.Flask | None = None) -> None:
        if not isinstance(jm, JobMaster):
            raise ConfigError(f"JobMasterFlask needs a JobMaster object, got {type(jm).__name__}")
        if jm in _EXTENSIONS:
            raise ConfigError(
                "this JobMaster already has a JobMasterFlask: make one at module level and call its"
                " init_app(app) for each app"
            )
        _EXTENSIONS[jm] = self
        self.jm = jm
        self._app: flask.Flask | None = None
        jm.run_middleware(self._in_app_context)
        if app is not None:
            self.init_app(app)

    def init_app(self, app: flask.Flask) -> None:
        """Bind the JobMaster to `app`: `app.extensions["jobmaster"]`, the settings of
        `app.config["JOBMASTER"]` (a dict of JobMaster settings), and the app handlers run in."""
        if EXTENSION in app.extensions:
            raise ConfigError(
                f"jobmaster is already initialised on the Flask app {app.name!r}: call init_app once per app"
            )
        settings = app.config.get(CONFIG_KEY) or {}
        if not isinstance(settings, dict):
            raise ConfigError(
                f"app.config[{CONFIG_KEY!r}] must be a dict of JobMaster settings,"
                f" got {type(settings).__name__}"
            )
        # Only what differs: a test suite initialises a new app per test on a JobMaster it opened.
        changes = {k: v for k, v in settings.items() if getattr(self.jm.config, k, _UNSET) != v}
        if changes:
            try:
                self.jm._reconfigure(**changes)
            except ConfigError as exc:
                raise ConfigError(f"app.config[{CONFIG_KEY!r}]: {exc}") from None
        app.extensions[EXTENSION] = self.jm
        self._app = app

    async def _in_app_context(self, call_next: RunNext, job: Job) -> Any:
        """Run middleware: the handler runs inside the app's context."""
        if self._app is None or flask.has_app_context():
            return await call_next()
        with self._app.app_context():
            return await call_next()


def current_jobmaster() -> JobMaster:
    """The JobMaster of the current Flask app (in a view, a CLI command or a handler)."""
    if not flask.has_app_context():
        raise ConfigError("current_jobmaster() needs a Flask app context (a request, or app.app_context())")
    jm = flask.current_app.extensions.get(EXTENSION)
    if not isinstance(jm, JobMaster):
        raise ConfigError(
            f"the Flask app {flask.current_app.name!r} has no JobMaster:"
            " call JobMasterFlask(jm).init_app(app) in its factory"
        )
    return jm
