"""Job <-> bytes for agent messages and JSON columns.

orjson is used because it is several times faster than the standard library on the hot path and
refuses what it cannot represent instead of guessing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from jobmaster.errors import JobMasterError, PayloadError, ResultError
from jobmaster.jobs import columns as cols
from jobmaster.jobs.model import Job


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def loads(raw: bytes | str | None) -> Any:
    if raw is None:
        return None
    return orjson.loads(raw)


def encode_payload(value: Any, what: Callable[[], str], limit: int) -> bytes:
    """Serialise user data, refusing what JSON cannot hold and what exceeds `max_message_bytes`.

    `what` names the data in an error; it is called only then (this runs once per scheduled job).
    """
    return _bounded(value, what, limit, "max_message_bytes", PayloadError)


def encode_result(value: Any, handler: str, limit: int) -> str:
    """A handler's return value as the JSON text its job stores, refusing what JSON cannot hold
    and what exceeds `max_result_bytes` (`ResultError`)."""

    def what() -> str:
        return f"the result of handler {handler!r}"

    return _bounded(value, what, limit, "max_result_bytes", ResultError).decode()


def _bounded(
    value: Any, what: Callable[[], str], limit: int, setting: str, error: type[JobMasterError]
) -> bytes:
    try:
        raw = orjson.dumps(value)
    except TypeError as exc:
        raise error(f"{what()} is not JSON-serialisable: {exc}") from None
    if len(raw) > limit:
        raise error(f"{what()} is {len(raw)} bytes once serialised, over {setting}={limit}")
    return raw


#: The wire format this version writes: `[FORMAT, *fields]`, the fields in `WIRE_FIELDS` order (the
#: columns with a `wire` place in `jobs/columns.py`).
#:
#: Formats only ever append fields, each safe to ignore for a worker that does not know it: a worker
#: reads a newer format's first `len(WIRE_FIELDS)` fields and leaves the rest, so publishers can be
#: upgraded while older workers still run. A new field is therefore a new FORMAT, whose reader must
#: still take this one's messages without it (`_as_current`); `tests/unit/test_wire_format.py` pins
#: the fields of every released format. A change that cannot be made by appending needs a message
#: shape older workers refuse (they store such a message in the master as undecodable, see
#: `runtime/poison.py`); none exists yet. Format 1, the messages of releases before formats were
#: numbered, is the bare list of the same fields and is still read.
FORMAT = 2
WIRE_FIELDS = tuple(c.name for c in cols.WIRE)
_LENGTH = 1 + len(WIRE_FIELDS)
#: Fields of a format 1 message, which has no number to tell its format by.
_FORMAT_1_FIELDS = 15


def _into_wire(column: cols.Column) -> str:
    value = f"job.{column.name}"
    return f"int({value})" if column.kind.enum is not None else value


#: How each kind is read back: a message is checked as it is read, and a wrong type fails the job's
#: decoding (poison) instead of reaching a handler.
_FROM_WIRE = {
    cols.TEXT: "str",
    cols.FLOAT: "float",
    cols.INT: "int",
    cols.BIGINT: "int",
    cols.BOOL: "bool",
    cols.JSON: "dict",
}


def _from_wire(column: cols.Column) -> str:
    value = f"value[{1 + (column.wire or 0)}]"
    if column.kind.enum is not None:
        read = f"_members_{column.kind.name}[{value}]"
    else:
        read = f"{_FROM_WIRE[column.kind]}({value})"
    return f"(None if {value} is None else {read})" if column.nullable else read


def _job_arguments() -> str:
    """Positional while the fields of `Job` are on the wire from the first on, keywords after."""
    arguments = []
    positional = True
    for column in cols.COLUMNS:
        positional = positional and column.wire is not None
        if column.wire is not None:
            arguments.append(_from_wire(column) if positional else f"{column.name}={_from_wire(column)}")
    return ", ".join(arguments)


def _as_current(value: Any) -> list[Any]:
    """A message of another format as `[FORMAT, *fields]`; ValueError if it is none this reads."""
    if type(value) is not list or not value:
        raise ValueError(f"not a non-empty JSON array but {type(value).__name__}")
    head, size = value[0], len(value)
    if type(head) is str and size == _FORMAT_1_FIELDS:
        return [FORMAT, *value]  # format 1: the fields without a number
    if type(head) is int and head >= FORMAT and size >= _LENGTH:
        return value[:_LENGTH]  # a newer format: the fields this one knows come first
    raise ValueError(
        f"format {head!r} with {size - 1} fields; this worker reads format 1"
        f" ({_FORMAT_1_FIELDS} unnumbered fields) and formats from {FORMAT} on"
        f" with at least {len(WIRE_FIELDS)} fields"
    )


_NAMESPACE: dict[str, Any] = {
    "Job": Job,
    "FORMAT": FORMAT,
    "_LENGTH": _LENGTH,
    "_dumps": orjson.dumps,
    "_loads": orjson.loads,
    "_JSONDecodeError": orjson.JSONDecodeError,
    "_as_current": _as_current,
    #: Lookups instead of `Priority(n)` / `JobStatus(n)`, a third of a microsecond each per message.
    **{
        f"_members_{c.kind.name}": {int(m): m for m in c.kind.enum}
        for c in cols.WIRE
        if c.kind.enum is not None
    },
}

job_to_bytes: Callable[[Job], bytes] = cols.compile_function(
    "job_to_bytes",
    f"""def job_to_bytes(job):
    "The job as an agent message of this `FORMAT`."
    return _dumps([FORMAT, {", ".join(_into_wire(c) for c in cols.WIRE)}])
""",
    _NAMESPACE,
)

#: Built from the registry: the job is made positionally, in the field order of `Job`, since every
#: message an executor adopts passes here (1.6 us a message).
job_from_bytes: Callable[[bytes], Job] = cols.compile_function(
    "job_from_bytes",
    f"""def job_from_bytes(raw):
    \"\"\"Rebuild a job from an agent message; raises ValueError on anything malformed (poison).

    Reads format 1 (unnumbered), this `FORMAT`, and newer formats by their known fields.
    \"\"\"
    try:
        value = _loads(raw)
        if type(value) is not list or len(value) != _LENGTH or value[0] != FORMAT:
            value = _as_current(value)  # the slow path: an older or a newer message
        return Job({_job_arguments()})
    except KeyError as exc:
        raise ValueError(f"undecodable job message: no priority or status {{exc}}") from None
    except (_JSONDecodeError, TypeError, ValueError) as exc:
        raise ValueError(f"undecodable job message: {{exc}}") from None
""",
    _NAMESPACE,
)
