"""The embedded Ray head, so detached agents outlive the command that created them.

``start_ray(home)`` runs ``ray start --head --block`` in its own session (process group),
bound to 127.0.0.1, dashboard off, ``RAY_AUTH_MODE=disabled``; its pid and port are kept under
``home/ray``. ``stop_ray(home)`` stops exactly that process group: never ``ray stop``, which
kills every Ray process on the machine. ``seedcore_thin.actors.connect()`` joins it when
``RAY_ADDRESS`` is unset. No ``import ray`` here: the package imports this module first.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from seedcore_thin.config import state_dir
from seedcore_thin.errors import SeedcoreError
from seedcore_thin.local import read_int

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 5.0  # `ray start --block` is slow to notice; its children die at once


def _dir(home: Path) -> Path:
    path = home / "ray"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _temp_dir(home: Path) -> str:
    """Ray's session dir holds unix sockets (path limit ~107 bytes): keep it short."""
    digest = hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:8]
    return f"/tmp/sc-ray-{digest}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: Ray replaces ``--node-ip-address=127.0.0.1`` with the machine's routable address and then
#: binds its gRPC servers there; with this switch off it keeps the loopback address, so the
#: embedded stack listens on 127.0.0.1 only (see docs/architecture.md, "Security").
LOOPBACK_ONLY = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def keep_ray_on_loopback() -> None:
    """Keep this process's Ray on 127.0.0.1 unless ``RAY_ADDRESS`` names another host.

    Ray reads the switch when it is imported, so the package calls this on import. A driver
    joining a remote cluster (``RAY_ADDRESS=10.0.0.5:6379`` or ``ray://...``) needs its
    routable address and is left alone.
    """
    address = os.environ.get("RAY_ADDRESS", "")
    host = address.rpartition(":")[0] if "://" not in address else "remote"
    if address and host not in {"127.0.0.1", "localhost", "[::1]"}:
        return
    for key, value in LOOPBACK_ONLY.items():
        os.environ.setdefault(key, value)
    # When ray was imported first it has already read the switch; its module constant is
    # what it consults at run time, so tell it too (workers inherit the environment).
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None and os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0":
        setattr(constants, "ENABLE_RAY_CLUSTER", False)  # noqa: B010


def ray_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("RAY_AUTH_MODE", "disabled")
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    env.update(LOOPBACK_ONLY)
    env.pop("RAY_ADDRESS", None)
    return env


def ray_status(home: Path | None = None) -> str | None:
    """The embedded head's address when it runs, else None (creates no folder)."""
    folder = (home or state_dir()) / "ray"
    pid, port = read_int(folder / "pid"), read_int(folder / "port")
    if pid is None or port is None or not _alive(pid) or not _port_open(port):
        return None
    return f"127.0.0.1:{port}"


def start_ray(home: Path | None = None, *, num_cpus: float | None = None) -> str:
    """Start the embedded head (idempotent); returns its address ``127.0.0.1:PORT``."""
    home = home or state_dir()
    running = ray_status(home)
    if running:
        return running
    folder = _dir(home)
    port = _free_port()
    ray_bin = str(Path(sys.executable).with_name("ray"))
    args = [
        ray_bin, "start", "--head", "--block",
        "--node-ip-address=127.0.0.1",
        f"--port={port}",
        "--include-dashboard=false",
        f"--dashboard-port={_free_port()}",
        f"--temp-dir={_temp_dir(home)}",
        "--disable-usage-stats",
    ]  # fmt: skip
    if num_cpus is not None:
        args.append(f"--num-cpus={num_cpus:g}")
    with open(folder / "ray.log", "ab") as log:
        proc = subprocess.Popen(
            args, env=ray_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    (folder / "pid").write_text(str(proc.pid))
    (folder / "port").write_text(str(port))
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SeedcoreError(f"ray start exited with {proc.returncode}; see {folder}/ray.log")
        if _port_open(port):
            return f"127.0.0.1:{port}"
        time.sleep(0.25)
    stop_ray(home)
    raise SeedcoreError(f"the Ray head did not come up in {START_TIMEOUT_S:g} s; see {folder}")


def stop_ray(home: Path | None = None) -> bool:
    """Stop the embedded head's process group; False when it was not running."""
    folder = _dir(home or state_dir())
    pid = read_int(folder / "pid")
    if pid is None or not _alive(pid):
        (folder / "pid").unlink(missing_ok=True)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline and _alive(pid):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.2)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    (folder / "pid").unlink(missing_ok=True)
    return True
