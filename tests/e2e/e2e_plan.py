"""Scheduling a test's plan from a publisher process, shared by the e2e apps."""

from __future__ import annotations

import json

from jobmaster import JobMaster


async def publish_plan(app: JobMaster, plan_path: str) -> None:
    """Schedule the plan's groups and write the ids back, so the test knows every job it must see.

    A group may ask for its jobs to be cancelled right after they are scheduled (`"cancel": true`).
    """
    with open(plan_path) as f:
        plan = json.load(f)
    out: dict[str, list[str]] = {}
    async with app:
        for group in plan:
            ids = await app.schedule_many(
                group["handler"],
                [{"n": i} for i in range(group["count"])],
                priority=group.get("priority"),
                lane=group.get("lane"),
                delay=group.get("delay"),
            )
            if group.get("cancel"):
                for job_id in ids:
                    await app.cancel(job_id)
            out.setdefault(group["name"], []).extend(ids)
    with open(plan_path + ".ids", "w") as f:
        json.dump(out, f)
