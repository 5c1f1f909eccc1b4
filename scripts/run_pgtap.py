"""Run the pgTAP suite (tests/sql/*.pg) with pg_prove on a fresh, migrated database.

Picks the test server like the pytest fixtures (SEEDCORE_TEST_PG_DSN, else 127.0.0.1:5432,
else the embedded stack), installs Debian's pgTAP when it is missing and we are root,
creates a database of its own, migrates it, runs pg_prove, drops the database and exits
with pg_prove's code.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from psycopg import conninfo

from seedcore_thin.config import state_dir
from seedcore_thin.errors import SeedcoreError
from seedcore_thin.local.postgres import scratch_database, test_server_dsn
from seedcore_thin.migrations import migrate_postgres
from seedcore_thin.queries import project_root
from seedcore_thin.registry import Registry

APT_ENV = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
APT_LOCK_WAIT = ["-o", "DPkg::Lock::Timeout=300"]


def _admin(dsn: str) -> Registry:
    """A client that also knows the tests' statements (``tests/sql/admin.sql``)."""
    return Registry(dsn, timeout=5.0, extra_sql=[project_root() / "tests" / "sql" / "admin.sql"])


def ensure_pgtap(server: str) -> None:
    """Install postgresql-<major>-pgtap (which brings pg_prove) when either is missing."""
    with _admin(server) as admin:
        major = int(admin.call("server_version_num")) // 10000
        if shutil.which("pg_prove") and admin.call("pgtap_available"):
            return
    if os.geteuid() != 0:
        raise SeedcoreError(
            f"pgTAP is missing: install it with `sudo apt-get install postgresql-{major}-pgtap`"
        )
    package = f"postgresql-{major}-pgtap"
    print(f"# installing {package} with apt-get", flush=True)
    for cmd in (
        ["apt-get", *APT_LOCK_WAIT, "update", "-q"],
        ["apt-get", *APT_LOCK_WAIT, "install", "-y", "-q", package],
    ):
        subprocess.run(cmd, check=True, env=APT_ENV, stdout=subprocess.DEVNULL)
    if not shutil.which("pg_prove"):
        raise SeedcoreError(f"{package} is installed but pg_prove is not on PATH")
    with _admin(server) as admin:
        available = admin.call("pgtap_available")
    if not available:
        raise SeedcoreError(
            "the test server has no pgTAP extension files (is it another machine? "
            f"install {package} there)"
        )


# libpq reads these variables; pg_prove's own -d does not understand a conninfo string.
_LIBPQ_ENV = {
    "host": "PGHOST",
    "hostaddr": "PGHOSTADDR",
    "port": "PGPORT",
    "dbname": "PGDATABASE",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "passfile": "PGPASSFILE",
    "sslmode": "PGSSLMODE",
    "options": "PGOPTIONS",
    "connect_timeout": "PGCONNECT_TIMEOUT",
}


def libpq_env(dsn: str) -> dict[str, str]:
    """The environment that makes psql (run by pg_prove) connect to ``dsn``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    for key, value in conninfo.conninfo_to_dict(dsn).items():
        if key not in _LIBPQ_ENV:
            raise SeedcoreError(f"run_pgtap cannot pass DSN parameter {key!r} to pg_prove")
        if value is not None:
            env[_LIBPQ_ENV[key]] = str(value)
    return env


def main() -> int:
    server = test_server_dsn(state_dir())
    try:
        ensure_pgtap(server)
    except (SeedcoreError, subprocess.CalledProcessError) as exc:
        print(f"run_pgtap: {exc}", file=sys.stderr)
        return 2
    tests = sorted((project_root() / "tests" / "sql").glob("*.pg"))
    if not tests:
        print("run_pgtap: no tests/sql/*.pg files", file=sys.stderr)
        return 2
    with scratch_database(server, "pgtap") as dsn:
        migrate_postgres(dsn)
        with _admin(dsn) as admin:
            admin.call("pgtap_create")
        cmd = ["pg_prove", "--failures", *(str(t.relative_to(project_root())) for t in tests)]
        return subprocess.run(cmd, check=False, env=libpq_env(dsn), cwd=project_root()).returncode


if __name__ == "__main__":
    sys.exit(main())
