"""The pytest plugin of the testing kit (loaded by jobmaster's `pytest11` entry point).

Fixtures, each for the app the `jobmaster_app` fixture returns:

- `jobmaster_inline`: the app in inline mode (`jobmaster.testing.inline`);
- `jobmaster_capture`: the app in capture mode;
- `jobmaster_cluster`: a running test cluster (async; needs pytest-asyncio).

`jobmaster_app` reads the `jobmaster_app` ini option (`module:attribute`, like `jobmaster worker
--app`); a project may override the fixture instead (in its conftest.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import click
import pytest

from jobmaster.testing.cluster import TestCluster, cluster
from jobmaster.testing.inline import Capture, Inline, capture, inline

if TYPE_CHECKING:
    from jobmaster.app import JobMaster


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "jobmaster_app",
        "the JobMaster of the app under test, as module:attribute (the jobmaster_app fixture)",
        default="",
    )


@pytest.fixture
def jobmaster_app(request: pytest.FixtureRequest) -> JobMaster:
    """The app under test, from the `jobmaster_app` ini option (override this fixture to choose)."""
    from jobmaster.cli.common import import_app

    path = str(request.config.getini("jobmaster_app"))
    if not path:
        raise pytest.UsageError(
            "the jobmaster fixtures need the app under test: set `jobmaster_app = module:attribute`"
            " in the [pytest] ini options, or define a fixture named jobmaster_app in conftest.py"
        )
    try:
        return import_app(path)
    except click.ClickException as exc:
        raise pytest.UsageError(f"jobmaster_app = {path}: {exc.format_message()}") from None


@pytest.fixture
def jobmaster_inline(jobmaster_app: JobMaster) -> Iterator[Inline]:
    """Scheduling runs each handler at once, in the test (`jobmaster.testing.inline`)."""
    with inline(jobmaster_app) as mode:
        yield mode


@pytest.fixture
def jobmaster_capture(jobmaster_app: JobMaster) -> Iterator[Capture]:
    """Scheduling records the jobs and runs nothing (`jobmaster.testing.capture`)."""
    with capture(jobmaster_app) as mode:
        yield mode


try:
    import pytest_asyncio
except ImportError:  # the async fixture then says what it needs when a test asks for it

    @pytest.fixture
    def jobmaster_cluster() -> None:
        """A running test cluster: needs pytest-asyncio."""
        raise pytest.UsageError(
            "the jobmaster_cluster fixture is async and needs pytest-asyncio (pip install pytest-asyncio);"
            " without it, use `async with jobmaster.testing.cluster(jm) as c:` in an async test"
        )

else:

    @pytest_asyncio.fixture
    async def jobmaster_cluster(jobmaster_app: JobMaster) -> AsyncIterator[TestCluster]:
        """A real in-process cluster on a temporary SQLite file (`jobmaster.testing.cluster`)."""
        async with cluster(jobmaster_app) as running:
            yield running
