"""Pure logic: back-off, capacity, codec, handler binding, option precedence."""

from __future__ import annotations

import gc
import os
import random
import time
from dataclasses import fields
from typing import Any

import orjson
import pytest

from helpers import make_job
from jobmaster import JobContext, JobMaster, Priority, ScheduleError
from jobmaster.config.loading import load
from jobmaster.jobs import codec
from jobmaster.jobs.model import (
    BASE_SLOTS,
    FINAL_STATUSES,
    Job,
    JobStatus,
    new_job_id,
    new_job_ids,
    run_capacity,
)
from jobmaster.jobs.retry import retry_delay
from jobmaster.master import postgres as pg_master
from jobmaster.master import rows
from jobmaster.master.base import StartNow
from jobmaster.operations.scheduling import Options, build_job
from jobmaster.runtime.process import WORKER_GC_THRESHOLD, tune_worker_gc


def test_backoff_doubles_and_is_capped() -> None:
    assert [retry_delay(n, 1.0, 100.0, 0.0) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 64, 100]
    rng = random.Random(7)
    for n in range(1, 50):
        delay = retry_delay(n, 0.5, 30.0, 0.25, rng)
        assert 0 < delay <= 30.0
        assert delay >= min(30.0, 0.5 * 2 ** (n - 1)) * 0.75 - 1e-9
    with pytest.raises(ValueError):
        retry_delay(0, 1, 1, 0)


def test_job_ids_are_unique_and_sort_by_creation_time() -> None:
    before = [new_job_id() for _ in range(20_000)]
    time.sleep(0.002)
    after = new_job_id()
    assert len(set(before)) == len(before)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in before)
    assert max(before) < after
    assert int(after[:12], 16) == pytest.approx(time.time() * 1000, abs=1000)


def test_a_batch_of_job_ids_shares_a_timestamp_and_not_its_random_part() -> None:
    batch = new_job_ids(5000)
    assert len(batch) == 5000 and len(set(batch)) == 5000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in batch)
    assert len({i[:12] for i in batch}) == 1
    assert int(batch[0][:12], 16) == pytest.approx(time.time() * 1000, abs=1000)
    # every 20-digit random part is drawn on its own: leading zeros are kept, none is empty
    assert {len(i[12:]) for i in batch} == {20}
    assert new_job_ids(0) == []


def test_job_ids_do_not_repeat_when_the_app_seeds_random_or_forks() -> None:
    random.seed(1)
    first = new_job_id()[12:]
    random.seed(1)
    assert new_job_id()[12:] != first
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        os.write(write, new_job_id()[12:].encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    from_child = os.read(read, 64).decode()
    os.close(read)
    assert len(from_child) == 20
    assert from_child != new_job_id()[12:]


def test_run_capacity_matches_the_tuning_guide() -> None:
    assert {
        Priority.VeryLow: 2,
        Priority.Low: 3,
        Priority.Medium: 4,
        Priority.High: 5,
        Priority.Critical: 6,
    } == BASE_SLOTS
    assert run_capacity(Priority.Medium, 1.0) == 4
    assert run_capacity(Priority.Critical, 6.0) == 36
    assert run_capacity(Priority.Low, 0.25) == 1
    assert run_capacity(Priority.VeryLow, 0.01) == 1


def test_final_statuses() -> None:
    assert {JobStatus.Succeeded, JobStatus.Failed, JobStatus.Cancelled} == FINAL_STATUSES
    assert not JobStatus.Processing.is_final


def test_codec_round_trip_and_poison() -> None:
    jm = JobMaster("c", "sqlite:///:memory:")

    @jm.handler
    async def h(ctx: JobContext, a: int) -> None:
        return None

    job = build_job(jm.registry.resolve(h), {"a": 1}, Options(priority="high"), jm.config)
    job.status, job.attempts, job.version, job.attempt_limit = JobStatus.Queued, 2, 7, 9
    back = codec.job_from_bytes(codec.job_to_bytes(job))
    assert back == job
    fields_ = orjson.loads(codec.job_to_bytes(job))[1:]  # without the format: a format 1 message
    bad_enums = [fields_[:4] + [bad] + fields_[5:] for bad in (99, [1], None)]  # priority
    bad_enums += [fields_[:10] + [bad] + fields_[11:] for bad in (42, "Queued")]  # status
    for raw in (b"not json", b"[1, 2]", b'{"id": 1}', *(orjson.dumps(f) for f in bad_enums)):
        with pytest.raises(ValueError, match="undecodable"):
            codec.job_from_bytes(raw)


def test_precedence_call_over_handler_over_cluster() -> None:
    cfg = load(cluster_id="c", environ={}, default_max_retries=4, default_job_timeout=60)
    jm = JobMaster("c", "sqlite:///:memory:")

    @jm.handler(priority="low", timeout="2m", metadata={"team": "a", "k": 1})
    def h() -> None:
        return None

    handler = jm.registry.resolve(h)
    plain = build_job(handler, None, Options(), cfg)
    assert (plain.priority, plain.timeout_s, plain.max_retries) == (Priority.Low, 120, 4)
    assert plain.metadata == {"team": "a", "k": 1}
    call = build_job(handler, None, Options(priority="critical", max_retries=0, metadata={"k": 2}), cfg)
    assert (call.priority, call.max_retries, call.attempt_limit) == (Priority.Critical, 0, 1)
    assert call.metadata == {"team": "a", "k": 2}


def test_handlers_take_context_only_when_they_ask() -> None:
    jm = JobMaster("c", "sqlite:///:memory:")

    @jm.handler
    def with_ctx(ctx, x: int) -> None:  # type: ignore[no-untyped-def]
        return None

    @jm.handler
    def without(x: int) -> None:
        return None

    assert jm.registry.resolve(with_ctx).wants_context
    assert not jm.registry.resolve(without).wants_context
    jm.registry.resolve(without).check_arguments({"x": 1})
    with pytest.raises(ScheduleError, match="missing a required argument"):
        jm.registry.resolve(without).check_arguments({})


def _shapes() -> list[Any]:
    def plain(a: int, b: int = 2) -> None: ...
    def kw_only(*, a: int, b: int = 2) -> None: ...
    def any_kw(a: int, **rest: Any) -> None: ...
    def with_ctx(ctx: JobContext, a: int) -> None: ...
    def pos_only(a: int, /, b: int = 2) -> None: ...
    def star_args(*args: int, a: int = 1) -> None: ...
    def nothing() -> None: ...

    return [plain, kw_only, any_kw, with_ctx, pos_only, star_args, nothing]


@pytest.mark.parametrize("func", _shapes(), ids=lambda f: f.__name__)
def test_the_fast_argument_check_agrees_with_signature_bind(func: Any) -> None:
    """The set-based check must accept and refuse exactly what calling the handler would."""
    handler = JobMaster("shapes").registry.register(func)
    datas: list[dict[str, Any]] = [{}, {"a": 1}, {"b": 1}, {"a": 1, "b": 2}, {"a": 1, "c": 3}, {"c": 3}]
    for data in datas:
        args = (None,) if handler.wants_context else ()
        try:
            handler.signature.bind(*args, **data)
            binds = True
        except TypeError:
            binds = False
        if binds:
            handler.check_arguments(data)
        else:
            with pytest.raises(ScheduleError, match="does not match the parameters"):
                handler.check_arguments(data)


def test_job_rows_follow_the_field_order_of_job() -> None:
    """Rows are read into jobs by position, so the column list must keep the fields' order."""
    assert tuple(f.name for f in fields(Job)) == rows.JOB_COLUMNS


def test_adoption_columns_say_what_adopted_copies_say() -> None:
    """Backends that write columns use the one, the others the other: they must agree."""
    jobs = [make_job(0), make_job(0, attempts=2, started_at=5.0), make_job(0)]
    start = StartNow(frozenset({jobs[0].id, jobs[1].id}), 123.0)
    columns = start.adoption_columns(jobs)
    for n, job in enumerate(jobs):
        adopted = start.adopted(job)
        assert {name: values[n] for name, values in columns.items()} == {
            name: getattr(adopted, name) for name in columns
        }
    assert columns["status"] == [JobStatus.Processing, JobStatus.Processing, JobStatus.Queued]


def test_postgres_batch_columns_carry_what_job_to_row_gives() -> None:
    """PostgreSQL builds batches column by column, the other backends row by row: one job must come
    out the same either way, conversions included (enums as ints, JSON as text)."""
    job = make_job(
        3,
        priority=Priority.High,
        status=JobStatus.Queued,
        data={"n": 1.0},
        metadata={"k": True},
        bucket_id="b1",
        worker_id="w1",
        lease_expires_at=9.5,
        started_at=1.5,
        cancel_requested=True,
        last_error={"type": "E"},
    )
    _, params = pg_master._job_rows([job], 1)
    columns, row = [params[0][0], *params[1:]], list(rows.job_to_row(job))
    assert columns == row
    assert [type(v) for v in columns] == [type(v) for v in row]  # Priority.High == 3 as well


def test_a_worker_process_keeps_the_collector_off_its_hot_path() -> None:
    before = gc.get_threshold()
    try:
        tune_worker_gc()
        assert gc.get_threshold() == (WORKER_GC_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
