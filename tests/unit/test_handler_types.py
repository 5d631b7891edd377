"""The typed call path under mypy: a handler's scheduling methods take its own parameters (less its
`JobContext`), so a wrong argument is a type error where the job is scheduled."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

#: Each line marked `# E: text` must have a mypy error containing `text`; no other line may have one.
SNIPPET = """
from jobmaster import JobContext, JobMaster

jm = JobMaster("typed")


@jm.handler
async def send(email: str, retries: int = 0) -> None:
    pass


@jm.handler(priority="high")
def greet(ctx: JobContext, name: str) -> str:
    return name


async def right() -> None:
    await send.schedule(email="a@example.com")
    await send.schedule("a@example.com", 2)
    await send.options(delay="1s", priority="high").schedule(email="x")
    await send.schedule_many([{"email": "a"}])
    await greet.schedule(name="Ada")
    greet.sync.schedule("Ada")
    greet.options(lane="Heavy").sync.schedule(name="Ada")
    await send("a@example.com")
    assert greet(ctx=None, name="x") == "x"  # type: ignore[call-arg]
    await jm.schedule(send, {"email": "a"})


async def wrong() -> None:
    await send.schedule(email=3)  # E: Argument "email" to "schedule" of "HandlerCalls" has incompatible type
    await send.schedule(retries="x", email="a")  # E: Argument "retries" to "schedule" of "HandlerCalls" has
    await send.schedule()  # E: Missing positional argument "email" in call to "schedule"
    await greet.schedule(nme="Ada")  # E: Unexpected keyword argument "nme" for "schedule"
    greet.sync.schedule(1)  # E: Argument 1 to "schedule" of "SyncHandlerCalls" has incompatible type "int"
    await send.options(priorty="high").schedule(email="a")  # E: Unexpected keyword argument "priorty"
    n: int = greet(JobContext.__new__(JobContext), "Ada")  # E: (expression has type "str", variable has
"""


def test_wrong_arguments_are_type_errors_and_right_ones_are_not(tmp_path: Path) -> None:
    source = tmp_path / "snippet.py"
    source.write_text(SNIPPET, encoding="utf-8")
    checked = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path),
            "snippet.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    errors: dict[int, list[str]] = {}
    for line in checked.stdout.splitlines():
        found = re.match(r"snippet\.py:(\d+): error: (.*)", line)
        if found:
            errors.setdefault(int(found.group(1)), []).append(found.group(2))
    expected = {
        n: text.split("# E: ", 1)[1]
        for n, text in enumerate(SNIPPET.splitlines(), start=1)
        if "# E: " in text
    }
    assert set(errors) == set(expected), checked.stdout
    for n, text in expected.items():
        assert any(text in error for error in errors[n]), (n, errors[n])
