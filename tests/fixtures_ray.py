"""Real Ray for the tests: one local instance per session, and a two-node loopback cluster.

Other people's Ray instances run on the same machine, so nothing here runs ``ray stop``
(it kills every Ray process of the machine): our nodes run ``ray start --block`` in their own
process group, and we stop exactly those groups.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

RAY_BIN = str(Path(sys.executable).with_name("ray"))
LOCAL_CPUS = 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Poll ``check`` until true; the seconds it took, or AssertionError after ``timeout_s``."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"{what} not within {timeout_s} s")
        time.sleep(0.1)
    return time.monotonic() - start


def ray_env() -> dict[str, str]:
    env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    env.pop("RAY_ADDRESS", None)
    return env


@pytest.fixture(scope="session")
def ray_session() -> Iterator[str]:
    """A local Ray (4 logical CPUs, no dashboard) for the whole session; yields its address."""
    import ray

    tmp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: unix socket paths are limited
    ray.init(
        num_cpus=LOCAL_CPUS,
        include_dashboard=False,
        namespace="seedcore-tests",
        log_to_driver=False,
        _temp_dir=tmp,
    )
    try:
        yield str(ray.get_runtime_context().gcs_address)
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def ray_namespace(ray_session: str) -> Iterator[str]:
    """A fresh Ray namespace per test; every named actor left in it is killed afterwards."""
    from seedcore_thin import actors

    ns = f"t-{uuid.uuid4().hex[:10]}"
    yield ns
    for space, name in actors.named_actors([ns]):
        actors.kill(name, space, wait_s=2.0)


#: Ray rewrites 127.0.0.1 to the machine's routable address when multi-node clusters are on
#: (and ``ray start --address`` refuses to join when they are off), so the two-node cluster
#: lives on other loopback addresses, which Ray keeps as given.
HEAD_IP = "127.0.0.2"


def cluster_env() -> dict[str, str]:
    """Environment for the nodes and drivers of a multi-node loopback cluster."""
    return {**ray_env(), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1"}


@dataclass
class LoopbackCluster:
    """Ray nodes on 127.0.0.1 started with ``ray start --block``, each its own process group."""

    temp_dir: str
    port: int = field(default_factory=free_port)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"{HEAD_IP}:{self.port}"

    def _start(self, args: list[str], log: str, *, node_ip: str) -> None:
        with open(Path(self.temp_dir) / log, "wb") as out:
            proc = subprocess.Popen(
                [RAY_BIN, "start", "--block", "--node-ip-address", node_ip, *args],
                env=cluster_env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append(proc)

    def start_head(self, *, num_cpus: float) -> None:
        self._start(
            [
                "--head",
                f"--port={self.port}",
                f"--num-cpus={num_cpus:g}",
                "--num-gpus=0",
                "--include-dashboard=false",
                f"--dashboard-port={free_port()}",
                f"--temp-dir={self.temp_dir}",
                "--disable-usage-stats",
            ],
            "head.log",
            node_ip=HEAD_IP,
        )

    def add_node(self, *, num_cpus: float, num_gpus: float) -> None:
        self._start(
            [
                f"--address={self.address}",
                f"--num-cpus={num_cpus:g}",
                f"--num-gpus={num_gpus:g}",
                "--disable-usage-stats",
            ],
            f"node{len(self.procs)}.log",
            node_ip=f"127.0.0.{len(self.procs) + 2}",
        )

    def stop(self) -> None:
        """SIGTERM our process groups, SIGKILL what is left after a few seconds.

        ``ray start --block`` only notices its children died on its next poll, so waiting
        long for it buys nothing; the raylet and GCS are gone after the SIGTERM.
        """
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(3)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def _port_open(address: str) -> bool:
    host, _, port = address.rpartition(":")
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, int(port))) == 0


def wait_for_resources(
    address: str, need: dict[str, float], logs: Path, timeout_s: float = 120.0
) -> None:
    """Poll the cluster from a short-lived driver until it reports ``need``.

    A driver started before the GCS listens can hang far longer than the GCS takes to come
    up, so the port is awaited first and a hung probe is retried rather than fatal.
    """
    probe = (
        f"import json, ray; ray.init(address={address!r}, log_to_driver=False, "
        f"_node_ip_address={address.rpartition(':')[0]!r}); "
        "print(json.dumps(ray.cluster_resources()))"
    )
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        if not _port_open(address):
            last = f"nothing listens on {address} yet"
            time.sleep(0.5)
            continue
        try:
            done = subprocess.run(
                [sys.executable, "-c", probe],
                env=cluster_env(),
                capture_output=True,
                text=True,
                timeout=45,
            )
        except subprocess.TimeoutExpired:
            last = "a probe driver hung for 45 s"
            continue
        out = done.stdout.strip()
        last = out.splitlines()[-1] if out else done.stderr[-500:]
        if done.returncode == 0:
            have = json.loads(last)
            if all(have.get(k, 0) >= v for k, v in need.items()):
                return
        time.sleep(1)
    tails = "\n".join(f"--- {log.name}\n{log.read_text()[-1500:]}" for log in logs.glob("*.log"))
    raise TimeoutError(f"cluster at {address} never reported {need}: {last}\n{tails}")


@pytest.fixture(scope="module")
def two_node_cluster() -> Iterator[LoopbackCluster]:
    """A head (CPU only) plus a second node declaring one GPU, both on loopback."""
    cluster = LoopbackCluster(temp_dir=tempfile.mkdtemp(prefix="rc", dir="/tmp"))
    try:
        cluster.start_head(num_cpus=2)
        wait_for_resources(cluster.address, {"CPU": 2}, Path(cluster.temp_dir))
        cluster.add_node(num_cpus=1, num_gpus=1)
        wait_for_resources(cluster.address, {"CPU": 3, "GPU": 1}, Path(cluster.temp_dir))
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(cluster.temp_dir, ignore_errors=True)
