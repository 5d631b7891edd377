"""Views that enqueue tasks the ways a Django app does: in a transaction, on commit, async."""

import json
from typing import Any

from django.db import transaction
from django.http import HttpRequest, JsonResponse

from shop.compat import TaskResultDoesNotExist, default_task_backend
from shop.models import Order
from shop.tasks import double, process_order, send_email


def create_order(request: HttpRequest) -> JsonResponse:
    """POST name, mode ("join" or "on_commit") and fail: an order and its task, one transaction."""
    enqueued: list[Any] = []
    with transaction.atomic():
        order = Order.objects.create(name=request.POST["name"])
        if request.POST.get("mode") == "on_commit":
            transaction.on_commit(lambda: enqueued.append(process_order.enqueue(order.id, note="on commit")))
        else:
            enqueued.append(process_order.enqueue(order.id, note="joined"))
        if request.POST.get("fail"):
            raise RuntimeError("order rejected after its task was enqueued")
    return JsonResponse({"order": order.id, "result_id": enqueued[0].id})


async def email(request: HttpRequest) -> JsonResponse:
    body = json.loads(request.body)
    result = await send_email.aenqueue(body["to"], subject=body["subject"])
    return JsonResponse({"result_id": result.id})


async def doubled(request: HttpRequest, n: int) -> JsonResponse:
    result = await double.aenqueue(n)
    return JsonResponse({"result_id": result.id})


def result(request: HttpRequest, result_id: str) -> JsonResponse:
    try:
        found = default_task_backend.get_result(result_id)
    except TaskResultDoesNotExist as exc:
        return JsonResponse({"error": str(exc)}, status=404)
    return JsonResponse({"status": str(found.status), "attempts": found.attempts})
