"""A Python user's first minute: the manager joins Ray by itself, whatever was imported first.

Each scenario runs in a fresh interpreter (as a user's ``python`` would) against a real Ray
head started like the embedded one (``ray start --head --block`` in its own process group on
127.0.0.1), bounded by a timeout so a hang fails instead of waiting for minutes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from seedcore_thin.local.falkordb import stop_falkordb
from seedcore_thin.local.rayhead import _temp_dir, start_ray, stop_ray
from tests.fixtures_ray import ray_env

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 120

SCENARIO = """
import json, sys
order = sys.argv[1]
if order.startswith("ray-first"):
    import ray
import seedcore_thin
from seedcore_thin.graph import MockGraphClient
from seedcore_thin.manager import get_tier0_manager
from seedcore_thin.specs import AgentSpec

if order == "ray-first-init-address":
    ray.init(address=sys.argv[2], log_to_driver=False)
elif order == "ray-first-init":
    ray.init(log_to_driver=False)
manager = get_tier0_manager()
manager.attach_graph(MockGraphClient([AgentSpec(agent_id="fm", organ_id="o")]))
report = manager.reconcile_from_graph()

import ray
from seedcore_thin import actors
ns = manager.reconciler.default_namespace
print(json.dumps({
    "outcomes": [o.outcome for o in report.outcomes],
    "gcs": ray.get_runtime_context().gcs_address,
    "connect": actors.connect(),
    "running": [name for _, name in actors.named_actors([ns])],
    "killed": actors.kill("fm", ns),
}))
"""

IMPORT_ONLY = """
import json, os, sys
import seedcore_thin
ray_imported = "ray" in sys.modules
from seedcore_thin.manager import get_tier0_manager
get_tier0_manager()

def read(path, how):
    try:
        return how(path)
    except OSError:  # gone meanwhile (a process, or listdir's own descriptor)
        return ""

stats = {pid: read(f"/proc/{pid}/stat", lambda p: open(p).read())
         for pid in os.listdir("/proc") if pid.isdigit()}
children = [pid for pid, stat in stats.items()
            if stat and int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid()]
sockets = [fd for fd in os.listdir("/proc/self/fd")
           if read(f"/proc/self/fd/{fd}", os.readlink).startswith("socket:")]
import ray
print(json.dumps({"ray_imported": ray_imported, "children": children, "sockets": sockets,
                  "ray_initialized": ray.is_initialized()}))
"""


def _run(script: str, *args: str, env: dict[str, str]) -> dict[str, object]:
    try:
        done = subprocess.run(
            [sys.executable, "-c", script, *args],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"hung for {TIMEOUT_S} s: {str(exc.stderr or '')[-2000:]}") from None
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


#: The state folders the scenarios ran with: each may hold the embedded FalkorDB that the
#: scenario's MockGraphClient started, stopped when the module is done.
_HOMES: set[Path] = set()


def _user_env(**extra: str) -> dict[str, str]:
    """A user's environment: no registry, a fresh namespace, the given Ray settings, and a
    state folder of the test's own (never the checkout's ``.seedcore``)."""
    env = ray_env()
    for key in ("SEEDCORE_PG_DSN", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "SEEDCORE_HOME"):
        env.pop(key, None)
    env = {**env, "SEEDCORE_NS": f"fm-{uuid.uuid4().hex[:8]}", **extra}
    env.setdefault("SEEDCORE_HOME", tempfile.mkdtemp(prefix="sch", dir="/tmp"))
    _HOMES.add(Path(env["SEEDCORE_HOME"]))
    return env


@pytest.fixture(scope="module", autouse=True)
def _stop_graph_servers() -> Iterator[None]:
    yield
    for home in _HOMES:
        stop_falkordb(home / "graph")


def test_import_starts_nothing(tmp_path: Path) -> None:
    found = _run(IMPORT_ONLY, env=_user_env(SEEDCORE_HOME=str(tmp_path)))
    assert found == {
        "ray_imported": False,  # so the loopback switch is set before ray reads it
        "children": [],
        "sockets": [],
        "ray_initialized": False,
    }


@pytest.fixture(scope="module")
def head() -> Iterator[tuple[str, Path]]:
    """An embedded head under a scratch home: (its address, the home)."""
    home = Path(tempfile.mkdtemp(prefix="sch", dir="/tmp"))
    try:
        yield start_ray(home, num_cpus=2), home
    finally:
        stop_ray(home)
        stop_falkordb(home / "graph")  # a scenario's MockGraphClient may have started it
        shutil.rmtree(_temp_dir(home), ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.parametrize(
    ("order", "ray_address"),
    [
        ("package-only", True),  # the README block as written: RAY_ADDRESS
        ("package-only", False),  # ... or the embedded head
        ("ray-first", True),  # ray imported first, nobody calls ray.init
        ("ray-first-init", True),  # the user's own ray.init() follows RAY_ADDRESS
    ],
)
def test_manager_joins_ray_by_itself(head: tuple[str, Path], order: str, ray_address: bool) -> None:
    address, home = head
    extra = {"RAY_ADDRESS": address} if ray_address else {"SEEDCORE_HOME": str(home)}
    found = _run(SCENARIO, order, env=_user_env(**extra))
    assert found["outcomes"] == ["succeeded"] and found["killed"] is True
    assert found["gcs"] == address and found["connect"] == address
    assert found["running"] == ["fm"]


@pytest.mark.ray
@pytest.mark.slow
def test_manager_keeps_the_users_connection(head: tuple[str, Path], tmp_path: Path) -> None:
    address, home = head
    # no embedded head here, so the manager's own rule would start a private Ray instead
    empty = str(tmp_path)
    found = _run(SCENARIO, "ray-first-init-address", address, env=_user_env(SEEDCORE_HOME=empty))
    assert found["gcs"] == address and found["outcomes"] == ["succeeded"]

    # ray.init() without an address, RAY_ADDRESS unset: Ray starts a private local instance
    # (the embedded head keeps its address file in its own temp dir); kept, and no hang
    found = _run(SCENARIO, "ray-first-init", env=_user_env(SEEDCORE_HOME=str(home)))
    assert found["gcs"] != address and found["connect"] == found["gcs"]
    assert found["outcomes"] == ["succeeded"] and found["running"] == ["fm"]
