"""NATS JetStream agent: bucket queues as subjects of one stream, claimed by compare-and-swap.

Why this shape:

* One stream per agent connection; a job's own message lives on `jm.<hash>.<bucket>.<job>` with
  `max_msgs_per_subject=1`, so the subject *is* the job's slot in its bucket and a push of a known
  job replaces the old copy. Acked messages are deleted by sequence: nothing stays behind (limits
  retention, explicit removal), unlike the .NET agent whose stream only ever grew.
* New jobs (version 0: the YES path) pushed together travel as one pack,
  `jm.<hash>.<bucket>.<pack>.p`, with a ledger `....<pack>.s` naming its settled members (see
  `packs`): a message per job cost nats-server a stored publish, a delivery and a delete, the
  whole CPU of a 2-core machine at 15,000-20,000 jobs a second. Every reader expands packs into
  entries of its index; the owner's read and ack settle members, and the pack and its ledger go
  with the last one. A claim moves a member onto the job's own subject (guarded: the subject must
  be empty), so everything after a claim is as for a job's own message. A member acknowledged by
  one process can still be handed out by another that has not read the ledger yet; a member is a
  version 0 job, which the master adopts at most once, so that costs a write, never a second run.
* A claim must honour the caller's clock (`now`, `visible_at`) and order by due time. A JetStream
  consumer hands out messages in stream order and hides them for a fixed real-time AckWait, so it
  can honour neither. The claim state is therefore data: a claimed message is re-published on its
  own subject with a `Jm-Vis` header (visible-at), guarded by `Nats-Expected-Last-Subject-Sequence`.
  The server checks, atomically, that the subject still holds the exact copy we read: of two
  claimers only one wins a message, a message acked or replaced meanwhile is never handed out, and a
  push of a new version (no `Jm-Vis`) is visible again at once, as on the SQL agents. A KV bucket of
  claims would cost the same write per message and could not tell that a message had been acked.
* To choose what to claim, each process keeps an index of the buckets it claims from, fed by its
  own pull consumer per bucket (no acks, memory state) that reads only what was stored since the
  last call: a claim costs one pull round trip plus one guarded publish per claimed message, however
  large the backlog. The index never trusts itself: it cannot see deletions made by other processes,
  but a stale entry just fails its guarded publish and is dropped. `count` asks the server.
* An ack deletes the sequence that was claimed, never a subject: on nats-server 2.9 a purge by
  subject moves every consumer's read position past messages it has not delivered yet, which would
  hide them from the readers above. (Also, a newer copy pushed after the claim survives the ack.)
* Bucket existence is a marker message on `jm.<hash>.<bucket>`. A push checks the marker after
  writing; destroy deletes the marker first, then counts. Whichever runs second sees the other: a
  push that lands after the count finds no marker, withdraws its messages and raises
  BucketGoneError, so no message is ever left in a destroyed bucket.
* A push carries `Nats-Msg-Id = bucket:job:version` (a pack: `bucket:pack`, named after its
  members; duplicate window 2 min): a retried publish is stored once, a new version is a new id.
  Claims carry no id: they must never be de-duplicated.
* Wake-ups: after each push a core-NATS message with the bucket id goes to `jmn.<hash>`.

Every operation fails fast while the connection is down (the publisher then takes the NO path and
the executors retry), and requests in flight fail as soon as the connection drops. The client
reconnects for ever in the background; after a reconnect every reader starts a new consumer from
where it stopped, since a restarted server may have lost the old one.
"""

from jobmaster.agents.nats.options import NatsOptions, parse_url, stream_name, token, untoken
from jobmaster.agents.nats.transport import NatsAgent
from jobmaster.agents.nats.wire import PACK_IDS, NatsAgentError, NatsUnavailableError

#: What `jobmaster.backends` looks for: the URL schemes served, and the class that serves them.
SCHEMES = ("nats",)
TRANSPORT = NatsAgent

__all__ = [
    "PACK_IDS",
    "SCHEMES",
    "TRANSPORT",
    "NatsAgent",
    "NatsAgentError",
    "NatsOptions",
    "NatsUnavailableError",
    "parse_url",
    "stream_name",
    "token",
    "untoken",
]
