"""Agent messages no worker can decode: kept in the master as Failed jobs, never simply deleted.

A version-0 message (the YES path) is the only copy of its job, so acknowledging it without a trace
would lose the job: a message of a format this worker cannot read (a newer publisher during an
upgrade that broke the format's append-only rule, a bug, bytes published by something else). Each
one becomes a Failed job of the handler `UNDECODABLE`, holding the raw bytes, the reason, the agent
and the bucket, so `jobmaster jobs list --handler jobmaster.undecodable` shows it and an operator
can decode it by hand. Callers acknowledge the messages only once this insert has committed; while
the master is unreachable it raises and the messages stay in the agent for a later read.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import math
import time
from collections.abc import Sequence
from typing import Any

from jobmaster.agents.base import AgentMessage
from jobmaster.jobs import codec
from jobmaster.jobs.model import Job, JobStatus
from jobmaster.master.base import MasterStore

log = logging.getLogger("jobmaster.poison")

#: The handler id of the Failed jobs that keep undecodable messages; no handler by that id runs.
UNDECODABLE = "jobmaster.undecodable"
#: Job ids are at most this long in every master (MySQL's `VARCHAR(64)`).
MAX_ID = 64

#: An undecodable message and why it could not be decoded.
Poison = tuple[AgentMessage, str]


def decode_messages(messages: Sequence[AgentMessage]) -> tuple[list[Job], list[Poison]]:
    """The jobs of `messages` (each with the master version its message carries), and the messages
    no worker can decode, with the reason, to keep in the master."""
    jobs: list[Job] = []
    poison: list[Poison] = []
    for message in messages:
        try:
            job = codec.job_from_bytes(message.payload)
        except ValueError as exc:
            poison.append((message, str(exc)))
            continue
        job.version = message.version
        jobs.append(job)
    return jobs, poison


async def keep_undecodable(master: MasterStore, agent: str, bucket_id: str, poison: Sequence[Poison]) -> None:
    """Store each message as a Failed job; returns once every one is committed in the master.

    A version-0 message keeps its job id, so the id its publisher got back finds the Failed job.
    A message of a job the master holds already (version > 0, or an id taken meanwhile) gets an id
    of its own, derived from its content, so that storing it again after a lost ack adds nothing.
    """
    if not poison:
        return
    now = time.time()
    kept = [_dead_letter(_first_id(m, agent, bucket_id), m, r, agent, bucket_id, now) for m, r in poison]
    new = set(await master.insert_jobs(kept))
    again = []
    for index, job in enumerate(kept):
        if job.id not in new and not await _already_kept(master, job.id):
            # the message's own id names a job the master holds: the dead letter needs an id of its own
            message = poison[index][0]
            kept[index] = job.copy(id=_derived_id(message, agent, bucket_id))
            again.append(kept[index])
    if again:
        await master.insert_jobs(again)
    for job, (message, reason) in zip(kept, poison, strict=True):
        log.warning(
            "agent %s bucket %s: undecodable message %s (version %d, %d bytes) kept in the master"
            " as Failed job %s: %s",
            agent,
            bucket_id,
            message.job_id,
            message.version,
            len(message.payload),
            job.id,
            reason,
        )


def _first_id(message: AgentMessage, agent: str, bucket_id: str) -> str:
    """The message's own job id where it can be the dead letter's: a job the master has not seen."""
    if message.version == 0 and 0 < len(message.job_id) <= MAX_ID:
        return message.job_id
    return _derived_id(message, agent, bucket_id)


async def _already_kept(master: MasterStore, job_id: str) -> bool:
    job = await master.get_job(job_id)
    return job is not None and job.definition_id == UNDECODABLE


def _derived_id(message: AgentMessage, agent: str, bucket_id: str) -> str:
    digest = hashlib.sha256()
    for part in (agent, bucket_id, message.job_id, str(message.version)):
        digest.update(part.encode(errors="replace") + b"\0")
    digest.update(message.payload)
    return digest.hexdigest()[:32]


def _dead_letter(
    job_id: str, message: AgentMessage, reason: str, agent: str, bucket_id: str, now: float
) -> Job:
    """The Failed job keeping `message`: raw bytes in `data`, where it came from in `metadata`."""
    due = message.due_at if math.isfinite(message.due_at) and message.due_at > 0 else now
    where = f"agent {agent!r}, bucket {bucket_id!r}, message {message.job_id!r} (version {message.version})"
    held = (
        f"; the master still holds job {message.job_id!r}, which this message was a copy of"
        if message.version > 0
        else ""
    )
    error: dict[str, Any] = {
        "type": "jobmaster.UndecodableMessage",
        "message": f"{reason}; from {where}{held}",
        "traceback": "",
    }
    return Job(
        job_id,
        UNDECODABLE,
        due,
        now,
        data={"payload_base64": base64.b64encode(message.payload).decode("ascii")},
        metadata={
            "agent": agent,
            "bucket": bucket_id,
            "message_job_id": message.job_id,
            "message_version": message.version,
        },
        max_retries=0,
        status=JobStatus.Failed,
        finished_at=now,
        last_error=error,
    )
