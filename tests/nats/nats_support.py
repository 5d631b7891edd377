"""Helpers of the NATS fault tests (imported by name, so kept out of conftest.py)."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import nats
import nats.errors

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateNats:
    """One nats-server process; `kill()` and `start()` keep the port and the store directory."""

    def __init__(self, root: Path, *args: str, jetstream: bool = True) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.store = root / "store"
        self.log = root / "nats-server.log"
        self.args = list(args)
        self.jetstream = jetstream
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        assert self.process is None, "already running"
        self.process = subprocess.Popen(
            [
                *(NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.port)),
                *(("-js", "-sd", str(self.store)) if self.jetstream else ()),
                *("-l", str(self.log)),
                *self.args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    if conn.recv(4096).startswith(b"INFO"):
                        return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nats-server did not start; see {self.log}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown of any kind, as in a crash."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


class PrivateNatsCluster:
    """`size` nats-servers routed into one JetStream cluster: each with its own server name, client
    and route ports, store directory and log; `nodes` by server name, each killable on its own."""

    def __init__(self, root: Path, size: int = 3) -> None:
        routes = {f"n{i}": free_port() for i in range(size)}
        self.nodes = {
            name: PrivateNats(
                root / name,
                *("--server_name", name, "--cluster_name", "jm"),
                *("--cluster", f"nats://127.0.0.1:{port}"),
                *("--routes", ",".join(f"nats://127.0.0.1:{p}" for n, p in routes.items() if n != name)),
            )
            for name, port in routes.items()
        }

    @property
    def url(self) -> str:
        """Every node, as a NATS agent URL lists the servers of one connection."""
        return ",".join(node.url for node in self.nodes.values())

    def start(self, timeout: float = 60.0) -> None:
        """Start every node, then wait until the cluster has elected its JetStream meta leader."""
        for node in self.nodes.values():
            node.start()
        deadline = time.monotonic() + timeout
        while "error" in (info := self.api("INFO")):
            assert time.monotonic() < deadline, f"JetStream cluster never became available: {info}"
            time.sleep(0.2)

    def api(self, endpoint: str) -> dict[str, Any]:
        """One `$JS.API.<endpoint>` request through any live node; an error entry if none answers."""
        return asyncio.run(self._api(endpoint))

    async def _api(self, endpoint: str) -> dict[str, Any]:
        live = [node.url for node in self.nodes.values() if node.process is not None]
        nc = await nats.connect(servers=live, connect_timeout=2, max_reconnect_attempts=1)
        try:
            reply = await nc.request(f"$JS.API.{endpoint}", b"", timeout=5)
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError) as exc:
            return {"error": {"description": str(exc)}}
        finally:
            await nc.close()
        found: dict[str, Any] = json.loads(reply.data)
        return found

    def stop(self) -> None:
        for node in self.nodes.values():
            node.stop()
