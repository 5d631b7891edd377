"""The shop's tasks: plain, async, with context, on another queue, failing."""

from typing import Any

from shop.compat import task
from shop.models import Order, Seen


class Boom(Exception):
    """What `always_fails` raises: its class path must come back in the result's errors."""


@task
def process_order(order_id: int, *, note: str = "") -> dict[str, Any]:
    Order.objects.filter(id=order_id).update(processed=True)
    return {"order": order_id, "note": note}


@task(queue_name="emails", priority=50)
def send_email(to: str, subject: str) -> str:
    return f"sent {subject!r} to {to}"


@task
async def double(n: int) -> int:
    await Seen.objects.acreate(result_id=str(n), what="double", value=str(n * 2))
    return n * 2


@task(takes_context=True)
def with_context(context: Any, label: str) -> int:
    Seen.objects.create(result_id=context.task_result.id, what="context", value=f"{label}:{context.attempt}")
    return int(context.attempt)


@task
def always_fails(message: str) -> None:
    raise Boom(message)


@task
def follow_up(order_id: int) -> str:
    """Enqueues another task from inside a worker (a worker thread, the worker's loop)."""
    return process_order.enqueue(order_id, note="from a task").id
