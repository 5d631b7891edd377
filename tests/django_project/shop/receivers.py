"""Receivers of the task signals that leave a row behind, so a test sees which process sent what."""

from typing import Any

from shop.compat import task_enqueued, task_finished, task_started
from shop.models import Seen


def _record(signal_name: str):  # type: ignore[no-untyped-def]
    def receiver(sender: type, task_result: Any, **kwargs: Any) -> None:
        Seen.objects.create(result_id=task_result.id, what=signal_name, value=str(task_result.status))

    return receiver


on_enqueued = _record("task_enqueued")
on_started = _record("task_started")
on_finished = _record("task_finished")
task_enqueued.connect(on_enqueued)
task_started.connect(on_started)
task_finished.connect(on_finished)
