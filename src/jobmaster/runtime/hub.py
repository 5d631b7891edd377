"""In-process wake-ups, fed by local writes and by database notifications.

A due job must start within milliseconds when a slot is free, so duties never sleep on a fixed long
interval: they wait on an event that whoever made work available sets, with a timer only as the
fallback for backends that cannot notify (SQLite across processes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from jobmaster.master.base import BUCKET_TOPIC, ENDED_TOPIC

HELD = "held"
BUCKETS = "buckets"
CANCEL = "cancel"


class Hub:
    def __init__(self) -> None:
        self.coordinator = asyncio.Event()
        self.cancel = asyncio.Event()
        self._buckets: dict[str, Callable[[], None]] = {}
        self._bucket_listeners: list[Callable[[], None]] = []
        #: Told the id of every watched job the master says ended (`jobmaster/results.py`).
        self._ended_listeners: list[Callable[[str], None]] = []

        self._topic_listeners: dict[str, list[Callable[[], None]]] = {}

    def register_bucket(self, bucket_id: str, wake: Callable[[], None]) -> None:
        self._buckets[bucket_id] = wake

    def unregister_bucket(self, bucket_id: str) -> None:
        self._buckets.pop(bucket_id, None)

    def on_buckets_changed(self, callback: Callable[[], None]) -> None:
        self._bucket_listeners.append(callback)

    def on_ended(self, callback: Callable[[str], None]) -> None:
        self._ended_listeners.append(callback)

    def on_topic(self, topic: str, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` at each notification of a feature's own `topic` (the recurring scheduler
        wakes on `schedules`); returns the function that stops it."""
        listeners = self._topic_listeners.setdefault(topic, [])
        listeners.append(callback)
        return lambda: listeners.remove(callback)

    def wake_bucket(self, bucket_id: str) -> None:
        wake = self._buckets.get(bucket_id)
        if wake is not None:
            wake()

    def master_topic(self, topic: str) -> None:
        """Dispatch a master notification (from LISTEN or from this process)."""
        if topic == HELD:
            self.coordinator.set()
        elif topic == CANCEL:
            self.cancel.set()
        elif topic == BUCKETS:
            for callback in self._bucket_listeners:
                callback()
        elif topic.startswith(BUCKET_TOPIC):
            self.wake_bucket(topic[len(BUCKET_TOPIC) :])
        elif topic.startswith(ENDED_TOPIC):
            job_id = topic[len(ENDED_TOPIC) :]
            for ended in self._ended_listeners:
                ended(job_id)

        else:
            for callback in self._topic_listeners.get(topic, ()):
                callback()


async def wait_for(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait for `event` at most `timeout` seconds, then clear it; True if it was set."""
    if not event.is_set():
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return False
    event.clear()
    return True
