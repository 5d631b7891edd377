"""Configuration: every source, every refusal names the setting, the value and the rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobmaster import ConfigError, JobMaster, Priority
from jobmaster.config.loading import OTHER_VARIABLES, load, load_with_sources, setting_variables
from jobmaster.config.settings import parse_duration


def test_defaults_follow_the_spec() -> None:
    cfg = load(cluster_id="App-Cluster", environ={})
    assert cfg.master == "sqlite:///jobmaster.db"
    assert cfg.transient_threshold == 600
    assert cfg.default_job_timeout == 300
    assert cfg.default_max_retries == 3
    assert cfg.max_message_bytes == 128 * 1024
    assert cfg.max_result_bytes == 64 * 1024
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


def test_a_misspelt_variable_stops_start_up_with_the_closest_name() -> None:
    with pytest.raises(ConfigError) as info:
        load(cluster_id="c", environ={"JOBMASTER_TRANSIENT_THRESHHOLD": "5m"})
    assert str(info.value) == (
        "unknown environment variable JOBMASTER_TRANSIENT_THRESHHOLD; did you mean"
        " JOBMASTER_TRANSIENT_THRESHOLD? (docs/configuration.md lists every variable)"
    )
    with pytest.raises(ConfigError, match="unknown environment variable JOBMASTER_NO_SUCH_THING \\("):
        load(cluster_id="c", environ={"JOBMASTER_NO_SUCH_THING": "1"})
    documented = {"JOBMASTER_CONFIG": "", "JOBMASTER_EVENT_LOOP": "asyncio", "JOBMASTER_MIGRATE": "check"}
    assert load(cluster_id="c", environ={**documented, "NOT_OURS": "x"}).migrate == "check"


def test_a_misspelt_toml_key_or_keyword_is_refused_with_the_closest_name(tmp_path: Path) -> None:
    path = tmp_path / "jobmaster.toml"
    path.write_text(
        '[cluster]\ncluster_id = "c"\ntransient_treshold = "5m"\n'
        '[[workers]]\nname = "w"\nparalelism_factor = 2\n'
    )
    with pytest.raises(ConfigError) as info:
        load(path, environ={})
    message = str(info.value)
    assert "unknown setting `transient_treshold`; did you mean transient_threshold?" in message
    assert "unknown setting `workers.0.paralelism_factor`; did you mean parallelism_factor?" in message
    with pytest.raises(
        ConfigError, match="unknown setting `hearbeat_interval`; did you mean heartbeat_interval"
    ):
        JobMaster("c", hearbeat_interval=1)


def test_every_value_says_where_it_came_from(tmp_path: Path) -> None:
    path = tmp_path / "jobmaster.toml"
    path.write_text('[cluster]\ncluster_id = "c"\njob_lease = "30s"\nheartbeat_interval = "4s"\n')
    env = {"JOBMASTER_TRANSIENT_THRESHOLD": "5m", "JOBMASTER_HEARTBEAT_INTERVAL": "2s"}
    cfg, sources = load_with_sources(path, environ=env, default_max_retries=9)
    assert (cfg.job_lease, cfg.transient_threshold, cfg.heartbeat_interval, cfg.default_max_retries) == (
        30.0,
        300.0,
        2.0,
        9,
    )
    assert sources == {
        "cluster_id": f"file {path}",
        "job_lease": f"file {path}",
        "heartbeat_interval": "environment JOBMASTER_HEARTBEAT_INTERVAL",
        "transient_threshold": "environment JOBMASTER_TRANSIENT_THRESHOLD",
        "default_max_retries": "keyword",
    }


def test_the_configuration_doc_lists_every_variable() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text(encoding="utf-8")
    missing = [v for v in [*setting_variables(), *OTHER_VARIABLES] if f"`{v}`" not in doc]
    assert missing == []
