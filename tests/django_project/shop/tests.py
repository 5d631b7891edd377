"""The shop project's own tests (Django's test runner; tests/jm_django/ runs them for each database).

Views enqueue through Django's test client; a real `manage.py jobmaster_worker` process runs the
tasks. TransactionTestCase, not TestCase: the worker must see committed rows, and the point of
some tests is what a commit or a rollback does to a job.
"""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.db import connection, transaction
from django.test import AsyncClient, Client, TransactionTestCase

from jobmaster.contrib.django import JobMasterBackend
from jobmaster.contrib.django.runner import HANDLER_ID
from jobmaster.errors import UnavailableError
from jobmaster.jobs.model import Priority
from shop.compat import TaskResultDoesNotExist, default_task_backend
from shop.models import Order, Seen
from shop.tasks import always_fails, double, follow_up, process_order, send_email, with_context

#: Generous: the machine runs other test suites at the same time.
DEADLINE = 90.0
PROJECT = Path(__file__).resolve().parents[1]


def wait_for(what: str, check: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def finished(result_id: str) -> Any:
    return wait_for(
        f"task {result_id} to finish",
        lambda: (r := default_task_backend.get_result(result_id)).is_finished and r,
    )


def jobs() -> Any:
    return default_task_backend.client.jm.sync


class ShopTests(TransactionTestCase):
    worker: subprocess.Popen[bytes]

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        log = Path(os.environ.get("JMTEST_DJANGO_DIR", ".")) / "worker.log"
        settings = os.environ["DJANGO_SETTINGS_MODULE"]
        cls.worker = subprocess.Popen(
            [sys.executable, "manage.py", "jobmaster_worker", "--settings", settings, "--log-jobs"],
            cwd=PROJECT,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )

    @classmethod
    def tearDownClass(cls) -> None:
        cls.worker.send_signal(signal.SIGTERM)
        try:
            cls.worker.wait(timeout=DEADLINE)
        finally:
            if cls.worker.poll() is None:
                cls.worker.kill()
            super().tearDownClass()

    def test_a_view_enqueues_and_the_worker_runs_the_task(self) -> None:
        response = Client().post("/orders/", {"name": "tea"})
        self.assertEqual(response.status_code, 200)
        body = response.json()
        result = finished(body["result_id"])
        self.assertEqual(result.status, "SUCCESSFUL")
        self.assertEqual(result.return_value, {"order": body["order"], "note": "joined"})
        self.assertTrue(Order.objects.get(id=body["order"]).processed)  # the ORM in the worker
        self.assertEqual(result.args, [body["order"]])
        self.assertEqual(result.kwargs, {"note": "joined"})
        self.assertEqual(result.attempts, 1)
        self.assertEqual(len(result.worker_ids), 1)
        self.assertEqual(result.errors, [])
        for stamp in (result.enqueued_at, result.started_at, result.last_attempted_at, result.finished_at):
            self.assertIsNotNone(stamp)
            self.assertIsNotNone(stamp.tzinfo)
        self.assertLessEqual(result.enqueued_at, result.started_at)
        self.assertLessEqual(result.started_at, result.finished_at)
        self.assertEqual(result.task.func, process_order.func)
        self.assertEqual(process_order.get_result(result.id).id, result.id)
        # the worker sent task_started and task_finished, this process task_enqueued
        seen = wait_for(
            "the worker's signals",
            lambda: (rows := set(Seen.objects.filter(result_id=result.id).values_list("what", "value")))
            >= {("task_started", "RUNNING"), ("task_finished", "SUCCESSFUL")}
            and rows,
        )
        self.assertIn(("task_enqueued", "READY"), seen)
        self.assertEqual(Client().get(f"/results/{result.id}/").json()["status"], "SUCCESSFUL")

    def test_on_commit_enqueues_after_the_commit_and_not_after_a_rollback(self) -> None:
        before = jobs().count_jobs(handler=HANDLER_ID)
        failing = Client(raise_request_exception=False).post(
            "/orders/", {"name": "x", "mode": "on_commit", "fail": 1}
        )
        self.assertEqual(failing.status_code, 500)
        self.assertEqual(jobs().count_jobs(handler=HANDLER_ID), before)
        body = Client().post("/orders/", {"name": "y", "mode": "on_commit"}).json()
        self.assertEqual(finished(body["result_id"]).kwargs, {"note": "on commit"})

    def test_async_views_enqueue_natively_and_async_tasks_run(self) -> None:
        client = AsyncClient()
        from asgiref.sync import async_to_sync

        response = async_to_sync(client.post)(
            "/emails/", {"to": "ada@example.com", "subject": "hi"}, content_type="application/json"
        )
        email = finished(response.json()["result_id"])
        self.assertEqual(email.return_value, "sent 'hi' to ada@example.com")
        self.assertEqual(email.task.queue_name, "emails")
        self.assertEqual(email.task.priority, 50)
        job = jobs().get_job(email.id)
        self.assertEqual((job.lane, job.priority), ("emails", Priority.High))
        doubled = async_to_sync(client.get)("/double/21/").json()
        self.assertEqual(async_to_sync(double.aget_result)(doubled["result_id"]).id, doubled["result_id"])
        self.assertEqual(finished(doubled["result_id"]).return_value, 42)
        self.assertEqual(Seen.objects.get(what="double", result_id="21").value, "42")

    def test_a_task_that_takes_context_gets_its_result_and_attempt(self) -> None:
        result = with_context.enqueue("ctx")
        self.assertEqual(finished(result.id).return_value, 1)
        self.assertEqual(Seen.objects.get(what="context", result_id=result.id).value, "ctx:1")

    def test_a_failing_task_keeps_every_attempt_error(self) -> None:
        result = finished(always_fails.enqueue("no luck").id)
        self.assertEqual(result.status, "FAILED")
        self.assertEqual(result.attempts, 2)  # default_max_retries = 1
        self.assertEqual(len(result.errors), 2)
        for error in result.errors:
            self.assertEqual(error.exception_class_path, "shop.tasks.Boom")
            self.assertIn("no luck", error.traceback)
            self.assertIn("raise Boom(message)", error.traceback)
        self.assertEqual(result.errors[0].exception_class.__name__, "Boom")
        with self.assertRaises(ValueError):
            result.return_value  # noqa: B018

    def test_a_task_enqueues_a_task(self) -> None:
        order = Order.objects.create(name="chain")
        inner = finished(follow_up.enqueue(order.id).id).return_value
        self.assertEqual(finished(inner).kwargs, {"note": "from a task"})
        self.assertTrue(Order.objects.get(id=order.id).processed)

    def test_a_task_leaves_no_database_connection_open_behind_it(self) -> None:
        from django.db import connection

        from jobmaster.contrib.django.runner import _run_sync
        from shop.compat import TaskResult

        order = Order.objects.create(name="connections")
        connection.ensure_connection()
        running = TaskResult(
            task=process_order,
            id="in-this-thread",
            status="RUNNING",
            enqueued_at=None,
            started_at=None,
            finished_at=None,
            last_attempted_at=None,
            args=[order.id],
            kwargs={},
            backend="default",
            errors=[],
            worker_ids=["here"],
        )
        # what a worker thread does around a task: with CONN_MAX_AGE 0, the connection is closed after
        self.assertEqual(_run_sync(process_order, running, JobMasterBackend), {"order": order.id, "note": ""})
        self.assertIsNone(connection.connection)
        self.assertTrue(Order.objects.get(id=order.id).processed)

    def test_an_aenqueue_from_a_short_lived_loop_leaves_the_backend_usable(self) -> None:
        from asgiref.sync import async_to_sync

        # a backend of its own, so this aenqueue is its first call (async_to_sync's loop then closes)
        backend = JobMasterBackend(
            "short-lived", {"QUEUES": ["default"], "OPTIONS": default_task_backend.options}
        )
        order = Order.objects.create(name="short-lived loop")
        enqueued = async_to_sync(backend.aenqueue)(process_order, [order.id], {})
        self.assertEqual(backend.get_result(enqueued.id).id, enqueued.id)
        self.assertEqual(finished(enqueued.id).status, "SUCCESSFUL")

    def test_the_backend_connects_to_nothing_until_used(self) -> None:
        options = {"cluster_id": "elsewhere", "master": "postgresql://postgres@127.0.0.1:1/nowhere"}
        backend = JobMasterBackend("elsewhere", {"OPTIONS": options})
        self.assertFalse(backend.client.jm.is_open)
        with self.assertRaisesMessage(UnavailableError, "127.0.0.1:1"):
            backend.enqueue(process_order, [1], {})

    def test_system_checks_name_bad_options(self) -> None:
        self.assertEqual(list(default_task_backend.check()), [])
        misspelt = JobMasterBackend("misspelt", {"OPTIONS": {"clster_id": "x"}})
        [error] = misspelt.check()
        self.assertEqual(error.id, "jobmaster.E001")
        self.assertIn("cluster_id", error.msg)
        elsewhere = {"cluster_id": "x", "master": "mysql://root@127.0.0.1/other", "database": "default"}
        [error] = JobMasterBackend("elsewhere", {"OPTIONS": elsewhere}).check()
        self.assertEqual(error.id, "jobmaster.E003")
        self.assertIn("OPTIONS['database'] = 'default'", error.msg)

    def test_a_deferred_task_waits_for_run_after(self) -> None:
        from datetime import timedelta

        from django.utils import timezone

        run_after = timezone.now() + timedelta(hours=1)
        result = send_email.using(run_after=run_after).enqueue("bob@example.com", subject="later")
        job = jobs().get_job(result.id)
        self.assertAlmostEqual(job.scheduled_at, run_after.timestamp(), places=3)
        read = default_task_backend.get_result(result.id)
        self.assertEqual(read.status, "READY")
        self.assertAlmostEqual(read.task.run_after.timestamp(), run_after.timestamp(), places=3)
        jobs().cancel(result.id)
        self.assertEqual(default_task_backend.get_result(result.id).status, "FAILED")

    def test_bad_input_is_refused_with_a_clear_error_and_loses_nothing(self) -> None:
        from datetime import datetime

        before = jobs().count_jobs(handler=HANDLER_ID)
        with self.assertRaisesMessage(TypeError, "shop.tasks.process_order"):
            process_order.enqueue(datetime.now())
        self.assertEqual(jobs().count_jobs(handler=HANDLER_ID), before)
        with self.assertRaises(TaskResultDoesNotExist):
            default_task_backend.get_result("0" * 32)
        self.assertEqual(Client().get("/results/nothing-like-this/").status_code, 404)
        with self.assertRaisesMessage(Exception, "priority"):
            process_order.using(priority=101)
        # a job whose task this code base no longer has: it fails, saying so, and stays to be retried
        data = {
            "task_path": "shop.gone.task",
            "args": [],
            "kwargs": {},
            "backend": "default",
            "queue_name": "default",
            "priority": 0,
            "run_after": None,
        }
        job_id = jobs().schedule(HANDLER_ID, data)
        wait_for("the job of a missing task to fail", lambda: jobs().get_job(job_id).status.name == "Failed")
        errors = [a.error for a in jobs().job_attempts(job_id)]
        self.assertTrue(errors)
        self.assertIn("'shop.gone.task' cannot be imported", errors[-1]["message"])


class TransactionJoinTests(TransactionTestCase):
    """PostgreSQL only (tests/jm_django/ runs it with those settings alone): enqueue inside `atomic()`
    writes the job through Django's own connection."""

    def setUp(self) -> None:
        self.assertEqual(connection.vendor, "postgresql")

    def test_the_job_exists_only_if_the_transaction_commits(self) -> None:
        with transaction.atomic():
            result = send_email.using(run_after=_later()).enqueue("a@example.com", subject="joined")
            with self.assertRaises(TaskResultDoesNotExist):  # jobmaster's own connection sees nothing yet
                default_task_backend.get_result(result.id)
        self.assertEqual(default_task_backend.get_result(result.id).status, "READY")
        jobs().cancel(result.id)

        before = jobs().count_jobs(handler=HANDLER_ID)
        failing = Client(raise_request_exception=False).post("/orders/", {"name": "z", "fail": 1})
        self.assertEqual(failing.status_code, 500)
        self.assertEqual(jobs().count_jobs(handler=HANDLER_ID), before)
        self.assertFalse(Order.objects.filter(name="z").exists())


def _later() -> Any:
    from datetime import timedelta

    from django.utils import timezone

    return timezone.now() + timedelta(hours=1)
