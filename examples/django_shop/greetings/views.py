"""A view that enqueues a task and one that reads its result, from any process."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from greetings.tasks import greet as greet_task


@csrf_exempt
def greet(request: HttpRequest) -> JsonResponse:
    result = greet_task.enqueue(request.POST.get("name", "world"))
    return JsonResponse({"result_id": result.id})


def result(request: HttpRequest, result_id: str) -> JsonResponse:
    found = greet_task.get_result(result_id)
    body = {"status": str(found.status), "attempts": found.attempts}
    if found.is_finished:
        body["return_value"] = found.return_value if found.status == "SUCCESSFUL" else None
    return JsonResponse(body)
