"""CPU time per job, for both benchmarks.

Rates alone cannot be compared across machines (the same commit ran the split PostgreSQL topology
at 9,700 jobs/s on one development host and at 31,000-35,000 on another), and they do not say
which process is the limit. CPU time per job does both: summed over the machine, it says how many
jobs a second the cores could carry at best, and per process it says where the time goes.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass

import psutil


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_busy_seconds() -> float:
    """CPU time every process on the machine spent, database and agent servers included."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


@dataclass(slots=True)
class CpuReading:
    machine: float
    own: float
    worker: float


class CpuMeter:
    """Reads the machine's, this process's and one worker process's CPU time at once."""

    def __init__(self, worker_pid: int) -> None:
        self._worker = psutil.Process(worker_pid)

    def read(self) -> CpuReading:
        worker = self._worker.cpu_times()
        return CpuReading(machine_busy_seconds(), own_cpu_seconds(), worker.user + worker.system)

    def per_job(self, since: CpuReading, jobs: int, prefix: str) -> dict[str, float]:
        """CPU microseconds a job since `since`: the machine's, the worker's, this process's (the
        publisher's), and the rest (servers on this machine, and noise); and the jobs a second the
        machine's cores could carry at that cost."""
        now, scale = self.read(), 1e6 / jobs
        machine = now.machine - since.machine
        worker = now.worker - since.worker
        own = now.own - since.own
        return {
            f"{prefix}machine_cpu_us_per_job": round(machine * scale, 1),
            f"{prefix}worker_cpu_us_per_job": round(worker * scale, 1),
            f"{prefix}publisher_cpu_us_per_job": round(own * scale, 1),
            f"{prefix}other_cpu_us_per_job": round((machine - worker - own) * scale, 1),
            f"{prefix}cpu_bound_per_s": round((os.cpu_count() or 1) * jobs / max(machine, 1e-9), 1),
        }
