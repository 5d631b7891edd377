"""Configuration: every source, every refusal names the setting, the value and the rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobmaster import ConfigError, JobMaster, Priority
from jobmaster.config.loading import load
from jobmaster.config.settings import parse_duration


def test_defaults_follow_the_spec() -> None:
    cfg = load(cluster_id="App-Cluster", environ={})
    assert cfg.master == "sqlite:///jobmaster.db"
    assert cfg.transient_threshold == 600
    assert cfg.default_job_timeout == 300
    assert cfg.default_max_retries == 3
    assert cfg.max_message_bytes == 128 * 1024
    assert cfg.data_retention == 30 * 86400


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("15s", 15), ("10m", 600), ("2h", 7200), ("30d", 2592000), (5, 5.0), ("1.5", 1.5)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("settings", "fragment"),
    [
        ({"cluster_id": "bad id!"}, "`cluster_id` = 'bad id!'"),
        (
            {"cluster_id": "c", "transient_threshold": "0.5s"},
            "`transient_threshold` = 0.5: Input should be greater than or equal to 1",
        ),
        ({"cluster_id": "c", "transient_threshold": "soon"}, "expected a duration"),
        ({"cluster_id": "c", "master": "redis://x"}, "unsupported master URL scheme 'redis'"),
        ({"cluster_id": "c", "timezone": "Mars/Base"}, "unknown IANA time zone"),
        ({"cluster_id": "c", "default_max_retries": -1}, "`default_max_retries` = -1"),
        ({"cluster_id": "c", "retry_backoff_base": 10, "retry_backoff_cap": 5}, "retry_backoff_cap"),
        ({"cluster_id": "c", "job_lease": 2, "heartbeat_interval": 3}, "job_lease"),
        ({"cluster_id": "c", "workers": [{"parallelism_factor": 0}]}, "workers.0.parallelism_factor"),
        ({"cluster_id": "c", "workers": [{"buckets": {"urgent": 1}}]}, "priority must be one of"),
        ({"cluster_id": "c", "workers": [{"buckets": {"low": -1}}]}, "greater than or equal to 0"),
        ({"cluster_id": "c", "workers": [{"agent": "nats-1"}]}, "not configured"),
        ({"cluster_id": "c", "workers": [{"name": "a"}, {"name": "a"}]}, "worker names must be unique"),
        ({"cluster_id": "c", "workers": [{"mode": "turbo"}]}, "workers.0.mode"),
        ({"cluster_id": "c", "workers": [{"lane": "no spaces"}]}, "workers.0.lane"),
        ({"cluster_id": "c", "unknown_setting": 1}, "unknown_setting"),
        (
            {"cluster_id": "c", "migrate": "sometimes"},
            "`migrate` = 'sometimes': Input should be 'auto', 'check'",
        ),
    ],
)
def test_invalid_settings_are_refused_with_a_clear_message(settings: dict, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(environ={}, **settings)
    assert fragment in str(info.value)


def test_toml_env_and_keywords_layer(tmp_path: Path) -> None:
    path = tmp_path / "jobmaster.toml"
    path.write_text(
        '[cluster]\ncluster_id = "from-file"\ntransient_threshold = "5m"\ndefault_max_retries = 7\n'
        '[[workers]]\nname = "general"\nbuckets = { critical = 0, medium = 4 }\nparallelism_factor = 2.0\n'
    )
    env = {"JOBMASTER_TRANSIENT_THRESHOLD": "2m", "JOBMASTER_CONFIG": str(path), "OTHER": "x"}
    cfg = load(environ=env, default_max_retries=9)
    assert cfg.cluster_id == "from-file"
    assert cfg.transient_threshold == 120
    assert cfg.default_max_retries == 9
    [worker] = cfg.workers
    assert worker.bucket_count(Priority.Critical) == 0
    assert worker.bucket_count(Priority.Medium) == 4
    assert worker.bucket_count(Priority.Low) == 1


def test_the_migrate_policy_comes_from_every_source(tmp_path: Path) -> None:
    assert load(cluster_id="c", environ={}).migrate == "auto"
    assert load(cluster_id="c", environ={"JOBMASTER_MIGRATE": "check"}).migrate == "check"
    path = tmp_path / "jobmaster.toml"
    path.write_text('[cluster]\ncluster_id = "c"\nmigrate = "never"\n')
    assert load(path, environ={}).migrate == "never"
    assert JobMaster("c", migrate="check").config.migrate == "check"


def test_bad_toml_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("cluster_id = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(config_file=path, environ={})
    with pytest.raises(ConfigError, match="does not exist"):
        load(config_file=tmp_path / "missing.toml", environ={})


def test_app_validates_every_change() -> None:
    jm = JobMaster("c", "sqlite:///:memory:")
    with pytest.raises(ConfigError, match="bucket_buffer_size"):
        jm.add_worker(name="w", bucket_buffer_size=0)
    with pytest.raises(ConfigError, match="unsupported agent URL scheme"):
        jm.add_agent("a1", "ftp://x")
    jm.add_worker(name="w", buckets={"critical": 0})
    assert jm.config.workers[0].name == "w"


def test_handler_options_are_validated() -> None:
    jm = JobMaster("c", "sqlite:///:memory:")
    with pytest.raises(ConfigError, match="priority"):
        jm.handler(priority="urgent")(lambda: None)
    with pytest.raises(ConfigError, match="timeout"):
        jm.handler(timeout=-1)(lambda: None)
