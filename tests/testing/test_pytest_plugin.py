"""The testing kit's pytest plugin, as a user meets it: a real pytest run of a user's project.

The plugin is loaded by jobmaster's `pytest11` entry point (nothing in the user's project names it);
the app comes from the `jobmaster_app` ini option or the user's own fixture.
"""

from __future__ import annotations

import pytest

APP = '''
from jobmaster import JobMaster

jm = JobMaster("user-app", "postgresql://nobody@localhost:1/never")

@jm.handler
async def send_welcome(email: str) -> str:
    return f"sent to {email}"

@jm.handler(lane="Reports")
def build_report(user: str) -> int:
    return len(user)

async def signup(email: str) -> None:
    """The code under test: what a view would do."""
    await jm.schedule(send_welcome, {"email": email})
    await jm.schedule(build_report, {"user": email})
'''

TESTS = """
from jobmaster import JobStatus
from jobmaster.testing import assert_scheduled, scheduled_jobs

import app


async def test_inline(jobmaster_inline):
    await app.signup("ada@example.com")
    assert jobmaster_inline.results(app.send_welcome) == ["sent to ada@example.com"]
    assert_scheduled(app.build_report, {"user": "ada@example.com"})


async def test_capture(jobmaster_capture):
    await app.signup("bob@example.com")
    assert len(scheduled_jobs()) == 2
    assert jobmaster_capture.scheduled_jobs(app.send_welcome)[0].data == {"email": "bob@example.com"}


async def test_cluster(jobmaster_cluster):
    await app.signup("eve@example.com")
    ran = await jobmaster_cluster.drain()
    assert sorted(j.lane for j in ran) == ["Default", "Reports"]
    assert {j.status for j in ran} == {JobStatus.Succeeded}
    assert sorted(map(str, (j.result for j in ran))) == ["15", "sent to eve@example.com"]


async def test_assertion_failure_shows_what_was_scheduled(jobmaster_capture):
    await app.signup("zed@example.com")
    assert_scheduled(app.send_welcome, {"email": "someone-else@example.com"})
"""


def _project(pytester: pytest.Pytester, ini: str) -> None:
    pytester.makepyfile(app=APP, test_user=TESTS)
    pytester.makeini(f"[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n{ini}")


def test_fixtures_from_the_ini_option(pytester: pytest.Pytester) -> None:
    _project(pytester, "jobmaster_app = app:jm")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*expected 'app.send_welcome' scheduled at least once"
            " with data={'email': 'someone-else@example.com'}; 0 matched.*",
            "*scheduled for 'app.send_welcome': 1 job(s)*",
            "*- data={'email': 'zed@example.com'} priority=Medium lane=Default*",
            "*other handlers: app.build_report x1*",
        ]
    )


def test_the_app_fixture_can_be_overridden(pytester: pytest.Pytester) -> None:
    _project(pytester, "")
    pytester.makeconftest(
        "import pytest\nimport app\n\n@pytest.fixture\ndef jobmaster_app():\n    return app.jm\n"
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "-k", "inline or cluster").assert_outcomes(
        passed=2
    )


def test_a_missing_app_is_a_clear_usage_error(pytester: pytest.Pytester) -> None:
    _project(pytester, "")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-k", "inline")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*set `jobmaster_app = module:attribute`*or define a fixture named jobmaster_app*"]
    )
    _project(pytester, "jobmaster_app = app:nothing")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-k", "inline")
    result.stdout.fnmatch_lines(["*jobmaster_app = app:nothing: module 'app' has no attribute 'nothing'*"])
