"""The lifecycle module: recovery decisions, and no store SQL spelling a status number itself."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from jobmaster.config.settings import ClusterConfig
from jobmaster.jobs import lifecycle as lc
from jobmaster.jobs.lifecycle import Expired, recover
from jobmaster.jobs.model import JobStatus
from jobmaster.jobs.retry import DEFAULT_RETRY, RetryPolicy

SRC = Path(__file__).resolve().parents[2] / "src" / "jobmaster"

#: A status compared, assigned or listed with a number in SQL: `status = 3`, `j.status <> 5`,
#: `status IN (3, 6)`, `IF(status = 2, ...)`, `status = CASE WHEN ... THEN 4`, `status = IF(x, 4, 6)`.
STATUS_LITERAL = re.compile(
    r"status\s*(?:=|<>|!=)\s*\d"
    r"|status\s+(?:NOT\s+)?IN\s*\(\s*\d"
    r"|status\s*=\s*CASE\b[^,]*?\bTHEN\s+\d"
    r"|status\s*=\s*IF\([^,]*,\s*\d",
    re.IGNORECASE,
)


def _sql_texts(path: Path) -> list[tuple[int, str]]:
    """Every literal piece of string in the module: plain strings and the text parts of f-strings."""
    tree = ast.parse(path.read_text())
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


STORE_MODULES = sorted(
    p for folder in ("master", "agents", "db") for p in (SRC / folder).glob("*.py") if p.name != "__init__.py"
)


@pytest.mark.parametrize("path", STORE_MODULES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_store_sql_takes_statuses_from_the_lifecycle(path: Path) -> None:
    found = [(line, text) for line, text in _sql_texts(path) if STATUS_LITERAL.search(text)]
    assert not found, f"{path.name} spells status numbers; use jobmaster.jobs.lifecycle: {found}"
    # an interpolation left in a string that is not an f-string would reach the database as text
    unrendered = [(line, text) for line, text in _sql_texts(path) if "{lc." in text]
    assert not unrendered, f"{path.name}: lifecycle names in a plain string: {unrendered}"


SCHEMA_FILES = sorted((SRC / "master" / "sql" / "schema").glob("*/*.sql"))


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_schema_files_take_statuses_from_the_lifecycle(path: Path) -> None:
    found = [line for line in path.read_text().splitlines() if STATUS_LITERAL.search(line)]
    assert not found, f"{path.name} spells status numbers; use {{lc.NAME}}: {found}"


def test_the_scan_finds_status_numbers() -> None:
    for sql in (
        "WHERE status = 3",
        "AND j.status <> 5",
        "status IN (3, 6)",
        "IF(status = 2, scheduled_at, NULL)",
        "status = CASE WHEN f.go THEN 4 ELSE 6 END",
        "status = IF(id IN (%s), 4, 6)",
    ):
        assert STATUS_LITERAL.search(sql), sql
    assert not STATUS_LITERAL.search("attempts = attempts + CASE WHEN f.go THEN 1 ELSE 0 END")


def test_status_sets_render_once_for_sql() -> None:
    assert lc.OWNED_SQL == "(3, 4, 6)"
    assert lc.FINAL_SQL == "(5, 7, 8)"
    assert lc.STARTABLE_SQL == lc.RELEASABLE_SQL == "(3, 6)"
    assert lc.RENEWED_SQL == "(4, 6)"


def test_default_retry_policy_is_the_cluster_default() -> None:
    assert ClusterConfig(cluster_id="c").retry_policy == DEFAULT_RETRY


def test_half_lease_renewal() -> None:
    assert lc.renew_before(100.0, 112.0) == 106.0


def _expired(status: JobStatus, *, cancel: bool = False, attempts: int = 1, limit: int = 4) -> Expired:
    return Expired("j1", 7, status, cancel, attempts, limit, 90.0, "w1")


def test_a_lost_run_is_retried_after_the_back_off_of_its_attempt() -> None:
    retry = RetryPolicy(base=10.0, cap=1000.0, jitter=0.0)
    first = recover(_expired(JobStatus.Processing, attempts=1), 100.0, retry)
    third = recover(_expired(JobStatus.Processing, attempts=3), 100.0, retry)
    assert (first.status, first.scheduled_at, first.finished_at) == (JobStatus.HeldOnMaster, 110.0, None)
    assert third.scheduled_at == 140.0
    assert first.version == 7
    assert first.error is not None and first.error["type"] == "WorkerLost"
    assert first.attempt is not None and (first.attempt.outcome, first.attempt.attempt) == ("lost", 1)
    assert first.attempt.started_at == 90.0


def test_the_back_off_is_the_one_a_failed_run_gets() -> None:
    retry = RetryPolicy(base=2.0, cap=60.0, jitter=0.3)
    lost = recover(_expired(JobStatus.Processing, attempts=2), 100.0, retry)
    assert lost.scheduled_at is not None
    assert 100.0 + 4.0 * 0.7 <= lost.scheduled_at <= 100.0 + 4.0 * 1.3


def test_recovery_cancels_fails_or_hands_back() -> None:
    cancelled = recover(_expired(JobStatus.Processing, cancel=True), 100.0, DEFAULT_RETRY)
    assert (cancelled.status, cancelled.finished_at) == (JobStatus.Cancelled, 100.0)
    assert cancelled.attempt is not None
    failed = recover(_expired(JobStatus.Processing, attempts=4, limit=4), 100.0, DEFAULT_RETRY)
    assert (failed.status, failed.finished_at, failed.scheduled_at) == (JobStatus.Failed, 100.0, None)
    for waiting in (JobStatus.Queued, JobStatus.AssignedToBucket):
        back = recover(_expired(waiting), 100.0, DEFAULT_RETRY)
        # never started here: due again at its own time, its last error and history untouched
        assert (back.status, back.scheduled_at, back.error, back.attempt) == (
            JobStatus.HeldOnMaster,
            None,
            None,
            None,
        )
