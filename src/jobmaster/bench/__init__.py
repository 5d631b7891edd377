"""The benchmark harness: `jobmaster bench` (`engine`) and `jobmaster bench-agent` (`agent`).

It ships with the package so any installation can measure itself, but it is no part of the engine:
nothing outside this package imports it except the CLI, and its one dependency of its own, psutil
(process memory and CPU counters), comes with the `bench` extra: `pip install 'jobmaster[bench]'`.
"""
