"""Cluster, agent and worker settings, with the names of the tuning guide.

The same settings load from Python keywords, a TOML file and `JOBMASTER_*` environment variables, and
every value is checked before anything starts: a bad value stops start-up with a message naming the
setting, the value and what is allowed, instead of surfacing later as odd runtime behaviour.
"""

from __future__ import annotations

import zoneinfo
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from jobmaster.cluster.model import WorkerMode
from jobmaster.durations import parse_duration
from jobmaster.jobs.model import DEFAULT_LANE, Priority
from jobmaster.jobs.retry import RetryPolicy

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,99}$"
LANE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
STANDALONE_AGENT = "standalone"
DEFAULT_MASTER = "sqlite:///jobmaster.db"

#: What `open()` does about the schema: `auto` applies pending migrations to the master and every
#: agent; `check` runs no DDL and refuses a master schema older than this code; `never` trusts it.
MigratePolicy = Literal["auto", "check", "never"]

Seconds = Annotated[float, BeforeValidator(parse_duration)]


def _priority_key(value: Any) -> Priority:
    return Priority.parse(value)


class AgentConfig(BaseModel):
    """A named transport holding in-flight jobs; its name is immutable once workers use it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    url: str

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        from jobmaster.backends import agent_schemes

        scheme = url.split(":", 1)[0].lower()
        if scheme not in agent_schemes():
            raise ValueError(
                f"unsupported agent URL scheme {scheme!r}; supported: {', '.join(agent_schemes())}"
            )
        return url


class WorkerConfig(BaseModel):
    """One worker: a mode, a lane, an agent connection and bucket counts per priority."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="worker", pattern=NAME_PATTERN)
    agent: str = Field(default=STANDALONE_AGENT, pattern=NAME_PATTERN)
    lane: str = Field(default=DEFAULT_LANE, pattern=LANE_PATTERN)
    mode: WorkerMode = WorkerMode.full
    buckets: dict[Priority, Annotated[int, Field(ge=0, le=100)]] = Field(default_factory=dict)
    parallelism_factor: float = Field(default=1.0, gt=0, le=100)
    bucket_buffer_size: int = Field(default=250, ge=1, le=100_000)
    bucket_buffer_lead_time: Seconds = Field(default=15.0, ge=0.0, le=3600.0)
    transfer_batch_size: int = Field(default=1000, ge=1, le=100_000)

    @field_validator("buckets", mode="before")
    @classmethod
    def _parse_priorities(cls, value: Any) -> dict[Priority, int]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValueError("buckets must map a priority name to a count, e.g. {critical = 0}")
        return {_priority_key(k): v for k, v in value.items()}

    def bucket_count(self, priority: Priority) -> int:
        """Every priority gets one bucket unless configured; 0 excludes it (tuning guide)."""
        return self.buckets.get(priority, 1)


class ClusterConfig(BaseModel):
    """Everything that binds publishers and workers together; validated as a whole."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cluster_id: str = Field(pattern=NAME_PATTERN)
    master: str = DEFAULT_MASTER
    transient_threshold: Seconds = Field(default=600.0, ge=1.0, le=86400.0)
    default_job_timeout: Seconds = Field(default=300.0, gt=0.0, le=7 * 86400.0)
    default_max_retries: int = Field(default=3, ge=0, le=1000)
    max_message_bytes: int = Field(default=128 * 1024, ge=1024, le=64 * 1024 * 1024)
    max_result_bytes: int = Field(default=64 * 1024, ge=16, le=64 * 1024 * 1024)
    timezone: str = "UTC"
    data_retention: Seconds = Field(default=30 * 86400.0, ge=60.0)
    mode: str = Field(default="Active", pattern=r"^(Active|Passive|Archived)$")
    retry_backoff_base: Seconds = Field(default=1.0, gt=0.0, le=86400.0)
    retry_backoff_cap: Seconds = Field(default=300.0, gt=0.0, le=7 * 86400.0)
    retry_jitter: float = Field(default=0.2, ge=0.0, le=1.0)
    heartbeat_interval: Seconds = Field(default=3.0, ge=0.1, le=300.0)
    job_lease: Seconds = Field(default=12.0, ge=1.0, le=3600.0)
    worker_timeout: Seconds = Field(default=10.0, ge=0.5, le=3600.0)
    idle_poll_interval: Seconds = Field(default=0.02, ge=0.005, le=60.0)
    shutdown_grace: Seconds = Field(default=30.0, ge=0.0, le=3600.0)
    migrate: MigratePolicy = "auto"
    #: A handler starts only once the write that started it is on disk. Only a PostgreSQL master in
    #: standalone mode lets that write skip its flush, so only there does this cost anything: about
    #: a quarter of no-op throughput (docs/benchmarks.md), for exact `attempts` across a server crash.
    durable_starts: bool = False
    #: A schedule declared in code is retired once no running process has declared it for this long
    #: (a deploy that removed it has finished rolling out); dynamic schedules are never retired.
    schedule_retire_after: Seconds = Field(default=600.0, ge=1.0, le=30 * 86400.0)
    agents: tuple[AgentConfig, ...] = ()
    workers: tuple[WorkerConfig, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value

    @field_validator("master")
    @classmethod
    def _known_master(cls, url: str) -> str:
        from jobmaster.backends import master_schemes

        scheme = url.split(":", 1)[0].lower()
        if scheme not in master_schemes():
            raise ValueError(
                f"unsupported master URL scheme {scheme!r}; supported: {', '.join(master_schemes())}"
            )
        return url

    @property
    def retry_policy(self) -> RetryPolicy:
        """The back-off of every run that did not succeed: a failed run and a lost one alike."""
        return RetryPolicy(self.retry_backoff_base, self.retry_backoff_cap, self.retry_jitter)

    @model_validator(mode="after")
    def _consistent(self) -> ClusterConfig:
        if self.retry_backoff_cap < self.retry_backoff_base:
            raise ValueError(
                f"retry_backoff_cap ({self.retry_backoff_cap}s) must be >= "
                f"retry_backoff_base ({self.retry_backoff_base}s)"
            )
        if self.job_lease <= 2 * self.heartbeat_interval:
            raise ValueError(
                f"job_lease ({self.job_lease}s) must be more than twice heartbeat_interval "
                f"({self.heartbeat_interval}s) so a live worker always renews in time"
            )
        if self.worker_timeout <= 2 * self.heartbeat_interval:
            raise ValueError(
                f"worker_timeout ({self.worker_timeout}s) must be more than twice "
                f"heartbeat_interval ({self.heartbeat_interval}s), or live workers look dead"
            )
        names = [a.name for a in self.agents]
        if len(names) != len(set(names)):
            raise ValueError(f"agent names must be unique, got {names}")
        if STANDALONE_AGENT in names:
            raise ValueError(f"agent name {STANDALONE_AGENT!r} is reserved for the master itself")
        workers = [w.name for w in self.workers]
        if len(workers) != len(set(workers)):
            raise ValueError(f"worker names must be unique, got {workers}")
        known = {STANDALONE_AGENT, *names}
        for worker in self.workers:
            if worker.agent not in known:
                raise ValueError(
                    f"worker {worker.name!r} uses agent {worker.agent!r}, which is not configured "
                    f"(configured: {', '.join(sorted(known))})"
                )
        return self

    def agent_urls(self) -> dict[str, str]:
        """Every agent connection by name; the standalone agent is the master database itself."""
        return {STANDALONE_AGENT: self.master, **{a.name: a.url for a in self.agents}}
