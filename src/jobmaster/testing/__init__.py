"""Testing kit for apps built on JobMaster (see docs/testing.md).

- `inline(jm)`: scheduling runs the handler at once in the caller's process (unit tests, no database);
- `capture(jm)`: scheduling records the jobs and does nothing else;
- `cluster(jm)`: a real in-process cluster on a temporary SQLite file, `await c.drain()` runs what is
  due and returns the jobs that ended;
- `assert_scheduled(handler, data=...)`, `assert_not_scheduled`, `scheduled_jobs(handler)`: what the
  code under test scheduled, in whichever mode is active;
- a pytest plugin (`jobmaster.testing.pytest_plugin`, loaded by the `pytest11` entry point) with the
  `jobmaster_inline`, `jobmaster_capture` and `jobmaster_cluster` fixtures.
"""

from jobmaster.testing.cluster import TestCluster, cluster
from jobmaster.testing.inline import Capture, Inline, Run, capture, inline
from jobmaster.testing.recording import assert_not_scheduled, assert_scheduled, scheduled_jobs

__all__ = [
    "Capture",
    "Inline",
    "Run",
    "TestCluster",
    "assert_not_scheduled",
    "assert_scheduled",
    "capture",
    "cluster",
    "inline",
    "scheduled_jobs",
]
