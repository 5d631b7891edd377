"""Schema files: how they split into statements and render, how they are numbered, and that the
released migrations keep the numbers databases already record."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobmaster.db.postgres import advisory_key
from jobmaster.master.sql import migrations
from jobmaster.master.sql.dialect import MYSQL, POSTGRES, SQLITE, TABLE_OPTIONS, Dialect

#: Every released migration, by number: databases record these numbers, so a file is never renamed,
#: renumbered or removed (a new one goes at the end).
RELEASED = {
    "sqlite": [
        "001_tables.sql",
        "002_bucket_queues.sql",
        "003_listing_index.sql",
        "004_results.sql",
        "005_schedules.sql",
    ],
    "postgres": [
        "001_tables.sql",
        "002_final_and_queue_indexes.sql",
        "003_lease_index.sql",
        "004_collate_c.sql",
        "005_succeed_function.sql",
        "006_start_assign_release_functions.sql",
        "007_listing_index.sql",
        "008_results.sql",
        "009_schedules.sql",
    ],
    "mysql": [
        "001_tables.sql",
        "002_drop_status_indexes.sql",
        "003_listing_index.sql",
        "004_results.sql",
        "005_schedules.sql",
    ],
}


@pytest.mark.parametrize("dialect", [SQLITE, POSTGRES, MYSQL], ids=lambda d: d.name)
def test_released_migrations_keep_their_numbers(dialect: Dialect) -> None:
    loaded = migrations.migrations(dialect)
    released = RELEASED[dialect.name]
    assert [m.file for m in loaded[: len(released)]] == released
    assert [m.number for m in loaded] == list(range(1, len(loaded) + 1))
    assert all(m.statements for m in loaded)
    assert migrations.latest(dialect) == len(loaded)


def test_semicolons_in_bodies_quotes_and_comments_end_no_statement() -> None:
    text = """
        -- a header; with a semicolon
        CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM 1; -- inside the body
            PERFORM ';';
        END
        $$;
        /* a block; comment */
        INSERT INTO t VALUES ('it''s; here', "a;b");
        DO $body$ BEGIN PERFORM $1; END $body$;
        SELECT 1
    """
    found = migrations.split(text)
    assert len(found) == 4, found
    assert found[0].startswith("CREATE FUNCTION f()")
    assert "PERFORM 1; -- inside the body" in found[0] and found[0].endswith("$$")
    assert found[1] == "INSERT INTO t VALUES ('it''s; here', \"a;b\")"
    assert found[2] == "DO $body$ BEGIN PERFORM $1; END $body$"
    assert found[3] == "SELECT 1"


@pytest.mark.parametrize("opening", ["'", '"', "/*", "$$", "$fn$"])
def test_an_unterminated_quote_names_its_line(opening: str) -> None:
    with pytest.raises(ValueError, match=r"unterminated .* at line 2"):
        migrations.split(f"SELECT 1;\nSELECT {opening} never closed;\n")


def test_names_render_from_the_lifecycle_and_the_dialect() -> None:
    text = "WHERE status = {lc.HELD} AND status IN {lc.FINAL_SQL} {TABLE_OPTIONS}"
    assert migrations.render(text, MYSQL) == f"WHERE status = 2 AND status IN (5, 7, 8) {TABLE_OPTIONS}"
    assert migrations.render(text, SQLITE) == "WHERE status = 2 AND status IN (5, 7, 8) "
    with pytest.raises(ValueError, match=r"unknown name \{lc.HLED\}"):
        migrations.render("status = {lc.HLED}", SQLITE)
    with pytest.raises(ValueError, match=r"unknown name \{lc.EXPIRED_COLUMNS\}"):
        migrations.render("{lc.EXPIRED_COLUMNS}", SQLITE)


def test_a_bad_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "001_first.sql").write_text("SELECT 1;")
    (tmp_path / "README.md").write_text("not a migration")
    assert [m.file for m in migrations.load(tmp_path, SQLITE)] == ["001_first.sql"]
    (tmp_path / "003_gap.sql").write_text("SELECT 3;")
    with pytest.raises(ValueError, match="sqlite schema file 003_gap.sql should be number 2"):
        migrations.load(tmp_path, SQLITE)
    (tmp_path / "003_gap.sql").rename(tmp_path / "2-unnumbered.sql")
    with pytest.raises(ValueError, match="2-unnumbered.sql is not named NNN_name.sql"):
        migrations.load(tmp_path, SQLITE)
    (tmp_path / "2-unnumbered.sql").rename(tmp_path / "002_bad.sql")
    (tmp_path / "002_bad.sql").write_text("SELECT '{x}';")
    with pytest.raises(ValueError, match=r"sqlite schema file 002_bad.sql: unknown name \{x\}"):
        migrations.load(tmp_path, SQLITE)


def test_the_postgres_migration_lock_is_the_key_earlier_releases_took() -> None:
    assert advisory_key(POSTGRES.migration_lock) == 0x6A6D5F6D61737472
    with pytest.raises(ValueError, match="8 bytes, not 4"):
        advisory_key("jm_m")
