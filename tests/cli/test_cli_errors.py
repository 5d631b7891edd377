"""How the CLI refuses bad input, in-process with click's runner."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from jobmaster.cli.main import cli


def _invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner(mix_stderr=False).invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_a_cluster_must_be_named() -> None:
    code, _, err = _invoke("jobs", "list")
    assert code == 2
    assert "--app module:attribute, or --master URL --cluster ID" in err


def test_app_and_master_are_exclusive() -> None:
    code, _, err = _invoke("status", "--app", "x:y", "--master", "sqlite:///x.db")
    assert code == 2
    assert "--app cannot be combined with --master" in err


def test_invalid_settings_are_one_line(tmp_path: Path) -> None:
    code, out, err = _invoke("jobs", "list", "--master", "oracle://db", "--cluster", "c")
    assert (code, out) == (2, "")
    assert err.strip().splitlines() == [
        "error: invalid setting `master` = 'oracle://db': unsupported master URL scheme 'oracle';"
        " supported: mariadb, mysql, postgres, postgresql, sqlite"
    ]


def test_a_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    db = tmp_path / "typo.db"
    code, _, err = _invoke("status", "--master", f"sqlite:///{db}", "--cluster", "c")
    assert code == 2
    assert f"master database {db} does not exist" in err
    assert not db.exists()


def test_unreachable_master_is_one_line_without_password() -> None:
    url = "postgresql://u:secret@127.0.0.1:9/x"
    code, _, err = _invoke("jobs", "count", "--master", url, "--cluster", "c")
    assert code == 1
    assert err.startswith("error: cannot connect to postgresql://u:***@127.0.0.1:9/x: ")
    assert "secret" not in err
    assert "Traceback" not in err


def test_an_unknown_event_loop_exits_2_by_option_or_environment() -> None:
    code, _, err = _invoke("--event-loop", "tokio", "db", "version", "--master", "sqlite:///x.db")
    assert code == 2
    assert "'tokio' is not one of 'auto', 'uvloop', 'asyncio'" in err
    result = CliRunner(mix_stderr=False, env={"JOBMASTER_EVENT_LOOP": "tokio"}).invoke(
        cli, ["db", "version", "--master", "sqlite:///x.db"]
    )
    assert result.exit_code == 2
    assert "Invalid value for '--event-loop': 'tokio' is not one of" in result.stderr


def test_bad_option_values_exit_2() -> None:
    code, _, err = _invoke("jobs", "list", "--master", "sqlite:///x.db", "--cluster", "c", "--status", "Done")
    assert code == 2
    assert "'Done' is not one of" in err
    code, _, err = _invoke("jobs", "reschedule", "--master", "sqlite:///x.db", "--cluster", "c", "some-id")
    assert code == 2
    assert "pass --at TIME or --delay DURATION" in err
