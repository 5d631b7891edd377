"""Pure logic of the Django backend: the priority bands at their edges, statement placeholders,
when a transaction can be joined. The backend at work is tested by tests/jm_django."""

from __future__ import annotations

import pytest

from jobmaster.contrib.django._compat import InvalidTask
from jobmaster.contrib.django.backend import lane_of
from jobmaster.contrib.django.priority import to_priority
from jobmaster.contrib.django.results import task_error
from jobmaster.contrib.django.transaction import format_style, join_problem
from jobmaster.jobs.model import DEFAULT_LANE, Priority


@pytest.mark.parametrize(
    ("django_priority", "expected"),
    [
        (100, Priority.Critical),
        (60, Priority.Critical),
        (59, Priority.High),
        (20, Priority.High),
        (19, Priority.Medium),
        (0, Priority.Medium),
        (-19, Priority.Medium),
        (-20, Priority.Low),
        (-59, Priority.Low),
        (-60, Priority.VeryLow),
        (-100, Priority.VeryLow),
    ],
)
def test_django_priorities_fall_in_five_bands(django_priority: int, expected: Priority) -> None:
    assert to_priority(django_priority) is expected


@pytest.mark.parametrize("bad", [101, -101, 1000, 2.5, True, "10"])
def test_a_priority_out_of_range_is_refused_naming_the_range(bad: object) -> None:
    with pytest.raises(InvalidTask, match=r"-100\.\.100 \(larger runs sooner\), got"):
        to_priority(bad)  # type: ignore[arg-type]


def test_the_default_queue_is_the_default_lane_and_others_keep_their_name() -> None:
    assert lane_of("default") == DEFAULT_LANE
    assert lane_of("emails") == "emails"


def test_placeholders_become_positional_in_order_of_appearance() -> None:
    sql, params = format_style("SELECT $2::int, $1, '5%', $2", ("a", 7))
    assert sql == "SELECT %s::int, %s, '5%%', %s"
    assert params == [7, "a", 7]


def test_builtin_exception_types_get_an_importable_path() -> None:
    assert task_error({"type": "ValueError", "traceback": "tb"}).exception_class is ValueError
    assert (
        task_error({"type": "shop.tasks.Boom", "traceback": "tb"}).exception_class_path == "shop.tasks.Boom"
    )


PG = {"NAME": "shop", "PORT": "5432"}


@pytest.mark.parametrize(
    ("vendor", "settings", "master", "problem"),
    [
        ("postgresql", PG, "postgresql://u@db/shop", None),
        ("postgresql", {"NAME": "shop", "PORT": ""}, "postgres://u@db:5432/shop", None),
        ("sqlite", {"NAME": "db.sqlite3"}, "sqlite:///jm.db", "only PostgreSQL's"),
        ("postgresql", PG, "mysql://u@db/shop", "not a mysql:// one"),
        ("postgresql", PG, "postgresql://u@db/other", "is not that database"),
        ("postgresql", PG, "postgresql://u@db:6432/shop", "is not that database"),
    ],
)
def test_a_transaction_is_joined_only_on_the_master_database(
    vendor: str, settings: dict[str, str], master: str, problem: str | None
) -> None:
    found = join_problem("default", settings, vendor, master)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found
