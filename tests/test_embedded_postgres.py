"""The embedded PostgreSQL from a private clone (0700 folder, as root or not) and its port.

Real server binaries, real initdb: a first run from a ``mktemp -d`` folder must work
without loosening that folder, and a restart must come back on the port clients hold.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from seedcore_thin.local import postgres
from seedcore_thin.queries import project_root, sql

pytestmark = pytest.mark.skipif(
    postgres.find_bindir() is None, reason="no PostgreSQL server binaries on this machine"
)


def _snapshot(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Mode, owner and group of the folder and everything below it."""
    found = {}
    for path in [folder, *folder.rglob("*")]:
        info = path.lstat()
        mode = stat.S_IMODE(info.st_mode)
        found[str(path.relative_to(folder))] = (mode, info.st_uid, info.st_gid)
    return found


@pytest.fixture
def private_folder(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh ``mktemp -d`` folder (mode 0700) as the working directory; the embedded
    server started under it is stopped and its cluster removed afterwards."""
    for var in ("SEEDCORE_HOME", "SEEDCORE_PG_DSN", "SEEDCORE_PG_PORT"):
        monkeypatch.delenv(var, raising=False)
    folder = Path(tempfile.mkdtemp(prefix="sc-private-"))
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    monkeypatch.chdir(folder)
    home = folder / ".seedcore"
    try:
        yield folder
    finally:
        cluster = postgres.cluster_dir(home)
        with contextlib.suppress(Exception):
            postgres.stop_postgres(home)
        if cluster.parent == postgres.CLUSTERS_DIR:
            shutil.rmtree(cluster, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)


def _stack(folder: Path, action: str) -> subprocess.CompletedProcess[str]:
    """``scripts/stack.py ACTION --only postgres`` run from ``folder``, as a new user would."""
    env = {**os.environ, "PYTHONPATH": str(project_root())}
    script = project_root() / "scripts" / "stack.py"
    return subprocess.run(
        [sys.executable, str(script), action, "--only", "postgres"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_first_run_from_a_private_folder_leaves_its_permissions_alone(
    private_folder: Path,
) -> None:
    before = stat.S_IMODE(private_folder.stat().st_mode), private_folder.stat().st_uid
    up = _stack(private_folder, "up")
    assert up.returncode == 0, up.stderr
    dsn = up.stdout.strip().removeprefix("SEEDCORE_PG_DSN=")
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        assert conn.execute(sql("ping")).fetchone() is not None
        assert conn.info.dbname == "seedcore"
    status = _stack(private_folder, "status")
    assert status.returncode == 0 and "running at" in status.stdout, status.stderr
    down = _stack(private_folder, "down")
    assert down.returncode == 0, down.stderr
    assert postgres.postgres_status(private_folder / ".seedcore") is None

    assert (stat.S_IMODE(private_folder.stat().st_mode), private_folder.stat().st_uid) == before
    owners = {uid for _, uid, _ in _snapshot(private_folder).values()}
    assert owners == {os.geteuid()}, "nothing in the user's folder was handed to another user"
    loose = {p: m for p, (m, _, _) in _snapshot(private_folder).items() if m & 0o022}
    assert loose == {}, "nothing in the user's folder became group or world writable"
    assert (private_folder / ".seedcore" / "pg" / "pgpass").stat().st_mode & 0o077 == 0


def test_restart_keeps_the_port_when_the_default_one_is_taken(private_folder: Path) -> None:
    home = private_folder / ".seedcore"
    with socket.socket() as squatter:
        # Hold the default port (if nobody else does already), forcing a fallback port;
        # SO_REUSEADDR so a TIME-WAIT left by an earlier test does not stop us holding it.
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with contextlib.suppress(OSError):
            squatter.bind(("127.0.0.1", postgres.DEFAULT_PORT))
            squatter.listen(1)
        dsn = postgres.start_postgres(home)
        port = int(psycopg.conninfo.conninfo_to_dict(dsn)["port"] or 0)
        assert port != postgres.DEFAULT_PORT
        # A client still connected while the server stops leaves the port in TIME-WAIT.
        client = psycopg.connect(dsn, autocommit=True, connect_timeout=5)
        client.execute(sql("ping"))
        postgres.stop_postgres(home)
        client.close()
        assert postgres.start_postgres(home) == dsn, "a restart comes back on the same port"
    assert postgres.reachable(dsn), "the DSN clients held before the restart works again"
