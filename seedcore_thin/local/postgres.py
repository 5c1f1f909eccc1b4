"""A PostgreSQL of this machine's own binaries under ``.seedcore/pg``, no Docker needed.

Layout below ``home/pg``: ``pgpass`` (the generated password, mode 0600), ``dsn`` (what
other commands read), ``port`` (the port of the last start, reused by the next one) and
the cluster: ``data/`` plus ``run/`` (unix socket and server log).

initdb refuses to run as root, so as root the server runs as the ``postgres`` OS user. That
user cannot enter a clone under a private folder (``mktemp -d``, ``/root``), and we never
loosen the user's folders to let it in: as root the cluster lives in
``/var/lib/seedcore/pg-<hash of home>`` (owned by postgres, mode 0700) and ``home/pg/cluster``
names it. The server listens on 127.0.0.1 only and on a unix socket that only its OS user
may open; TCP logins need the generated password, which never appears in the DSN (it names
the passfile instead).
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import secrets
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg import conninfo
from psycopg import sql as pgsql

from seedcore_thin.errors import ConfigError, RegistryUnavailable
from seedcore_thin.local import read_int
from seedcore_thin.queries import sql

DEFAULT_PORT = 54329
DATABASE = "seedcore"
SUPERUSER = "postgres"
LOCAL_SERVER_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
# As root: where clusters live, outside every user's folders (root-owned, mode 0755).
CLUSTERS_DIR = Path("/var/lib/seedcore")


def pg_home(home: Path) -> Path:
    return home / "pg"


def _as_root() -> bool:
    return os.geteuid() == 0


def cluster_dir(home: Path) -> Path:
    """The folder holding ``data/`` and ``run/``, one the server's OS user can enter.

    ``home/pg`` itself unless we are root; as root a folder of its own under
    :data:`CLUSTERS_DIR`, recorded in ``home/pg/cluster``. A cluster already initialised
    in ``home/pg`` (before this rule) stays where it is.
    """
    root = pg_home(home)
    pointer = root / "cluster"
    if pointer.is_file():
        return Path(pointer.read_text(encoding="utf-8").strip())
    if not _as_root() or (root / "data" / "PG_VERSION").is_file():
        return root
    digest = hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:16]
    return CLUSTERS_DIR / f"pg-{digest}"


def log_path(home: Path) -> Path:
    """The embedded server's log file."""
    return cluster_dir(home) / "run" / "postgres.log"


def find_bindir() -> Path | None:
    """The directory holding initdb and pg_ctl: ``pg_config --bindir``, else Debian's path."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for path in candidates:
        if (path / "initdb").is_file() and (path / "pg_ctl").is_file():
            return path
    return None


def reachable(dsn: str, timeout: float = 2.0) -> bool:
    """Whether a session can be opened within ``timeout`` seconds."""
    try:
        with psycopg.connect(dsn, connect_timeout=max(1, int(timeout))) as conn:
            conn.execute(sql("ping"))
        return True
    except psycopg.Error:
        return False


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Like the server itself: connections in TIME_WAIT do not make the port busy.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen(1)
        except OSError:
            return False
        return True


def _pick_port(home: Path) -> int:
    """``SEEDCORE_PG_PORT``, else the port of the last start, else the default, else any.

    Reusing the last port keeps the DSN that running clients hold valid across a restart.
    """
    raw = os.environ.get("SEEDCORE_PG_PORT")
    if raw:
        wanted = int(raw)
        if wanted == 5432:
            raise ConfigError(
                "SEEDCORE_PG_PORT must not be 5432: that port belongs to a system server"
            )
        if not _port_free(wanted):
            raise ConfigError(f"SEEDCORE_PG_PORT {wanted} is in use")
        return wanted
    for candidate in (read_int(pg_home(home) / "port"), DEFAULT_PORT):
        if candidate and candidate != 5432 and _port_free(candidate):
            return candidate
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _as_server_user(cmd: list[str]) -> list[str]:
    """Prefix ``cmd`` so it runs as the ``postgres`` OS user when we are root."""
    if not _as_root():
        return cmd
    if shutil.which("runuser") is None:
        raise ConfigError("running as root needs runuser to start PostgreSQL as user postgres")
    return ["runuser", "-u", SUPERUSER, "--", *cmd]


def _chown_to_server_user(*paths: Path) -> None:
    if not _as_root():
        return
    try:
        shutil.chown(paths[0], user=SUPERUSER)
    except LookupError:
        raise ConfigError("running as root needs an OS user named postgres") from None
    for path in paths[1:]:
        shutil.chown(path, user=SUPERUSER)


def _run(cmd: list[str], cluster: Path) -> subprocess.CompletedProcess[str]:
    """Run a server tool from inside ``cluster``: initdb and pg_ctl change back to their
    working directory, which must be one the server's OS user can enter (not the clone)."""
    return subprocess.run(
        _as_server_user(cmd), capture_output=True, text=True, check=False, cwd=cluster
    )


def _make_cluster_dir(home: Path) -> Path:
    """Create the cluster folder; as root, one the server's OS user owns (mode 0700)."""
    cluster = cluster_dir(home)
    if cluster == pg_home(home):
        return cluster
    if cluster.parent == CLUSTERS_DIR and not CLUSTERS_DIR.is_dir():
        CLUSTERS_DIR.mkdir(parents=True)
        CLUSTERS_DIR.chmod(0o755)  # our own folder: the server's user must traverse it
    cluster.mkdir(mode=0o700, parents=True, exist_ok=True)
    cluster.chmod(0o700)
    _chown_to_server_user(cluster)
    (pg_home(home) / "cluster").write_text(f"{cluster}\n", encoding="utf-8")
    return cluster


def _init_cluster(bindir: Path, home: Path) -> None:
    """initdb with a generated superuser password; write the passfile for TCP logins."""
    cluster = _make_cluster_dir(home)
    data, run = cluster / "data", cluster / "run"
    run.mkdir(parents=True, exist_ok=True)
    run.chmod(0o700)
    data.mkdir(mode=0o700, exist_ok=True)
    password = secrets.token_urlsafe(24)
    pwfile = run / "initdb.pw"
    pwfile.write_text(password + "\n", encoding="utf-8")
    pwfile.chmod(0o600)
    _chown_to_server_user(run, data, pwfile)
    try:
        out = _run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                SUPERUSER,
                "--pwfile",
                str(pwfile),
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-instructions",
            ],
            cluster,
        )
    finally:
        pwfile.unlink(missing_ok=True)
    if out.returncode != 0:
        shutil.rmtree(data, ignore_errors=True)
        raise ConfigError(f"initdb failed: {out.stderr.strip() or out.stdout.strip()}")
    # Loopback TCP plus a socket only the server's OS user (and root) may open.
    with (data / "postgresql.conf").open("a", encoding="utf-8") as conf:
        conf.write(
            "\n# seedcore_thin embedded stack\n"
            "listen_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{run}'\n"
            "unix_socket_permissions = 0700\n"
            "synchronous_commit = off\n"
        )
    passfile = pg_home(home) / "pgpass"
    passfile.write_text(f"127.0.0.1:*:*:{SUPERUSER}:{password}\n", encoding="utf-8")
    passfile.chmod(0o600)


def _dsn(root: Path, port: int, dbname: str) -> str:
    return conninfo.make_conninfo(
        host="127.0.0.1",
        port=str(port),
        user=SUPERUSER,
        dbname=dbname,
        passfile=str(root / "pgpass"),
    )


def _running(bindir: Path, cluster: Path) -> bool:
    data = cluster / "data"
    if not (data / "PG_VERSION").is_file():
        return False
    return _run([str(bindir / "pg_ctl"), "status", "-D", str(data)], cluster).returncode == 0


def _require_bindir() -> Path:
    bindir = find_bindir()
    if bindir is None:
        raise ConfigError(
            "no PostgreSQL server binaries found (pg_config --bindir, /usr/lib/postgresql/*/bin);"
            " install postgresql or set SEEDCORE_PG_DSN"
        )
    return bindir


def _ensure_database(root: Path, port: int) -> None:
    admin = _dsn(root, port, "postgres")
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(sql("database_exists"), (DATABASE,)).fetchone()
    if not (row and row[0]):
        create_database(admin, DATABASE)


def start_postgres(home: Path) -> str:
    """Start (initialising on first use) the embedded server; return the app DSN."""
    bindir = _require_bindir()
    root = pg_home(home)
    root.mkdir(parents=True, exist_ok=True)
    if not (cluster_dir(home) / "data" / "PG_VERSION").is_file():
        _init_cluster(bindir, home)
    cluster = cluster_dir(home)
    if _running(bindir, cluster):
        port = _running_port(cluster / "data")
    else:
        port = _start(bindir, cluster, _pick_port(home))
    (root / "port").write_text(f"{port}\n", encoding="utf-8")
    _ensure_database(root, port)
    dsn = _dsn(root, port, DATABASE)
    (root / "dsn").write_text(dsn + "\n", encoding="utf-8")
    return dsn


def _running_port(data: Path) -> int:
    """The port of the running server, from line 4 of its postmaster.pid."""
    lines = (data / "postmaster.pid").read_text(encoding="utf-8").splitlines()
    return int(lines[3])


def _start(bindir: Path, cluster: Path, port: int) -> int:
    data, run = cluster / "data", cluster / "run"
    out = _run(
        [
            str(bindir / "pg_ctl"),
            "start",
            "-D",
            str(data),
            "-l",
            str(run / "postgres.log"),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {port}",
        ],
        cluster,
    )
    if out.returncode != 0:
        log = run / "postgres.log"
        tail = log.read_text(encoding="utf-8", errors="replace")[-2000:] if log.exists() else ""
        raise RegistryUnavailable(f"pg_ctl start failed: {out.stderr.strip()}\n{tail}")
    return port


def stop_postgres(home: Path) -> None:
    """Stop the embedded server (fast shutdown); a stopped server is left alone."""
    bindir = find_bindir()
    root, cluster = pg_home(home), cluster_dir(home)
    if bindir is None or not _running(bindir, cluster):
        return
    stop = [str(bindir / "pg_ctl"), "stop", "-D", str(cluster / "data"), "-m", "fast", "-w"]
    out = _run(stop, cluster)
    if out.returncode != 0:
        raise RegistryUnavailable(f"pg_ctl stop failed: {out.stderr.strip()}")
    with contextlib.suppress(FileNotFoundError):
        (root / "dsn").unlink()


def postgres_status(home: Path) -> str | None:
    """The DSN of the running embedded server, or None when it is not running."""
    root = pg_home(home)
    dsn_file = root / "dsn"
    bindir = find_bindir()
    if bindir is None or not dsn_file.is_file() or not _running(bindir, cluster_dir(home)):
        return None
    dsn = dsn_file.read_text(encoding="utf-8").strip()
    return dsn if reachable(dsn) else None


def admin_dsn(dsn: str) -> str:
    """The same server, database ``postgres`` (to create and drop databases)."""
    return with_database(dsn, "postgres")


def with_database(dsn: str, dbname: str) -> str:
    return conninfo.make_conninfo(dsn, dbname=dbname)


def resolve_dsn(home: Path) -> str | None:
    """``SEEDCORE_PG_DSN`` when set, else the running embedded server's DSN."""
    return os.environ.get("SEEDCORE_PG_DSN") or postgres_status(home)


def test_server_dsn(home: Path) -> str:
    """The server tests and benchmarks use (an admin DSN, database ``postgres``).

    ``SEEDCORE_TEST_PG_DSN`` when set, else the system server on 127.0.0.1:5432 when it
    answers, else the embedded one (started if needed).
    """
    explicit = os.environ.get("SEEDCORE_TEST_PG_DSN")
    if explicit:
        return explicit
    if reachable(LOCAL_SERVER_DSN, timeout=1):
        return LOCAL_SERVER_DSN
    return admin_dsn(start_postgres(home))


def create_database(server_dsn: str, name: str, template: str | None = None) -> str:
    """Create database ``name`` (optionally a copy of ``template``); return its DSN."""
    with psycopg.connect(server_dsn, autocommit=True, connect_timeout=5) as conn:
        if template is None:
            stmt = pgsql.SQL(sql("database_create")).format(name=pgsql.Identifier(name))
        else:
            stmt = pgsql.SQL(sql("database_create_from_template")).format(
                name=pgsql.Identifier(name), template=pgsql.Identifier(template)
            )
        conn.execute(stmt)
    return with_database(server_dsn, name)


def drop_database(server_dsn: str, name: str) -> None:
    """Drop a scratch database; only ``sc_`` names, the ones this package creates."""
    if not name.startswith("sc_"):
        raise ValueError(f"refusing to drop {name!r}: only scratch sc_ databases are dropped")
    with psycopg.connect(server_dsn, autocommit=True, connect_timeout=5) as conn:
        conn.execute(pgsql.SQL(sql("database_drop")).format(name=pgsql.Identifier(name)))


def scratch_name(kind: str) -> str:
    return f"sc_{kind}_{os.getpid()}_{secrets.token_hex(5)}"


@contextlib.contextmanager
def scratch_database(server_dsn: str, kind: str, template: str | None = None) -> Iterator[str]:
    """A uniquely named database for the duration of the block (tests, pgTAP, benchmarks)."""
    name = scratch_name(kind)
    dsn = create_database(server_dsn, name, template=template)
    try:
        yield dsn
    finally:
        drop_database(server_dsn, name)


def redact_dsn(dsn: str) -> str:
    """The DSN with any password replaced, for printing and logs."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparsable DSN>"
    if "password" in params:
        params["password"] = "***"
    return make_conninfo("", **params)
