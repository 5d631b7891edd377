"""CPU time per job, for both benchmarks.

Rates alone cannot be compared across machines (the same commit ran the split PostgreSQL topology
at 9,700 jobs/s on one development host and at 31,000-35,000 on another), and they do not say
which process is the limit. CPU time per job does both: summed over the machine, it says how many
jobs a second the cores could carry at best, and per process it says where the time goes.

The machine's busy time is its cores' elapsed time less their idle time. The kernel charges busy
time a tick at a time to whatever runs when its timer fires, so a process that runs between two
ticks and then sleeps is missed: summed that way, a 30,000-job phase here read 3.6 ticks less than
its worker and publisher alone. Idle time, on a tickless kernel, is measured exactly.

Every `/proc` counter is still read in whole clock ticks (`SC_CLK_TCK`, 100 a second on Linux), and
a 3,000-job phase on a fast host lasts a few dozen: the parts can stray from the whole by a few
ticks whatever the phase's length. Each report therefore says how far, in microseconds a job
(`cpu_rounding_us_per_job`), so that a reader, and a test, judges the figures in ticks rather than
in percent.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass

import psutil

#: The cores `/proc/stat` sums over.
CORES = psutil.cpu_count() or 1
#: Seconds in one clock tick, the unit of every `/proc` CPU counter.
TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")
#: The counters of time the cores did no work here: `steal` is time the hypervisor gave to other
#: machines.
IDLE_FIELDS = ("idle", "iowait", "steal")
#: How many ticks the parts of a reading can stray from the whole: each idle counter, and each of
#: another process's two (user, system), is read rounded down to a tick, so a difference of two
#: readings is short by less than one tick per counter; one more for `steal`, which the kernel
#: charges a tick at a time. This process's own time (`getrusage`) is exact to the microsecond.
ROUNDING_TICKS = len(IDLE_FIELDS) + 2 + 1


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_busy_seconds() -> float:
    """CPU time every process on the machine spent, database and agent servers included."""
    times = psutil.cpu_times()
    idle = sum(getattr(times, field, 0.0) for field in IDLE_FIELDS)
    return float(CORES * time.monotonic() - idle)


def rounding_us_per_job(jobs: int) -> float:
    """How far, in microseconds a job, tick rounding can move the parts of a reading from its whole."""
    return round(ROUNDING_TICKS * TICK_S * 1e6 / jobs, 1)


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
        publisher's), and the rest (servers on this machine, and noise); the jobs a second the
        machine's cores could carry at that cost; and how far tick rounding can move the parts."""
        now, scale = self.read(), 1e6 / jobs
        machine = now.machine - since.machine
        worker = now.worker - since.worker
        own = now.own - since.own
        return {
            f"{prefix}machine_cpu_us_per_job": round(machine * scale, 1),
            f"{prefix}worker_cpu_us_per_job": round(worker * scale, 1),
            f"{prefix}publisher_cpu_us_per_job": round(own * scale, 1),
            f"{prefix}other_cpu_us_per_job": round((machine - worker - own) * scale, 1),
            f"{prefix}cpu_rounding_us_per_job": rounding_us_per_job(jobs),
            f"{prefix}cpu_bound_per_s": round((os.cpu_count() or 1) * jobs / max(machine, 1e-9), 1),
        }
