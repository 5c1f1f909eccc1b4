"""The package as an application gets it: a wheel, installed in a virtualenv outside the clone.

The wheel is built with ``pip wheel --no-deps --no-build-isolation`` (the build backend,
hatchling, is pinned in the dev extra, so no network is needed) and installed with
``pip install --no-deps`` into a fresh virtualenv under a tmp dir. To stay fast and offline,
that virtualenv borrows the project virtualenv's third-party packages through one ``.pth``
file listing the project's site-packages. Python adds such a path to ``sys.path`` but does
not process the ``.pth`` files inside it, so the project's editable install of
``seedcore_thin`` stays invisible there and what runs is the wheel's copy (the first test
asserts it). Every command runs from a cwd outside the clone, without ``PYTHONPATH`` or
``SEEDCORE_ROOT``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from seedcore_thin.graph.falkordb import FalkorDBGraphClient
from seedcore_thin.queries import parse_named_sql, project_root
from tests.fixtures_docs import DOCS, run_python

pytestmark = pytest.mark.slow

REPO = project_root()
DATA_PREFIX = "seedcore_thin/data/"


@dataclass(frozen=True)
class InstalledWheel:
    wheel: Path
    venv: Path
    workdir: Path  # outside the clone: every command runs here

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def site_packages(self) -> Path:
        out = self.run(
            [str(self.python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]
        )
        return Path(out.stdout.strip())

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "SEEDCORE_ROOT"}}
        env.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0", **extra)
        return env

    def run(
        self, args: list[str], *, check: bool = True, **env: str
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            args, cwd=self.workdir, env=self.env(**env), capture_output=True, text=True, timeout=240
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    def python_json(self, code: str, **env: str) -> dict[str, object]:
        """Run ``code`` in the wheel's virtualenv; it prints one JSON object last."""
        out = self.run([str(self.python), "-c", code], **env).stdout
        return dict(json.loads(out.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> InstalledWheel:
    base = tmp_path_factory.mktemp("wheel")
    assert not base.resolve().is_relative_to(REPO.resolve()), "the tmp dir must be outside"
    dist, venv, workdir = base / "dist", base / "venv", base / "work"
    workdir.mkdir()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(REPO)],
        check=True,
        capture_output=True,
        cwd=base,
    )
    (wheel,) = dist.glob("seedcore_thin-*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    target = InstalledWheel(wheel, venv, workdir)
    borrowed = sysconfig.get_path("purelib")
    (target.site_packages() / "_project_deps.pth").write_text(borrowed + "\n")
    subprocess.run(
        [*pip, "--python", str(target.python), "install", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
        cwd=base,
    )
    return target


def test_wheel_carries_every_sql_and_cypher_file(installed: InstalledWheel) -> None:
    versioned = {
        str(path.relative_to(REPO))
        for folder in ("sql", "cypher")
        for path in (REPO / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    with zipfile.ZipFile(installed.wheel) as wheel:
        carried = {
            n.removeprefix(DATA_PREFIX) for n in wheel.namelist() if n.startswith(DATA_PREFIX)
        }
    assert any(name.endswith(".sql") for name in carried)
    assert any(name.endswith(".cypher") for name in carried)
    assert carried == versioned


def test_installed_package_reads_its_own_copy(installed: InstalledWheel) -> None:
    names = list(parse_named_sql((REPO / "sql" / "queries.sql").read_text(encoding="utf-8")))
    seen = installed.python_json(
        "import json, seedcore_thin, seedcore_thin.queries as q\n"
        "print(json.dumps({'file': seedcore_thin.__file__, 'root': str(q.project_root()),\n"
        "  'cypher': sorted(p.stem for p in (q.cypher_dir() / 'queries').glob('*.cypher')),\n"
        f"  'sql': [q.sql(n) for n in {names!r}]}}))"
    )
    site = installed.site_packages()
    assert Path(str(seen["file"])).is_relative_to(site), "imported the clone, not the wheel"
    assert seen["root"] == str(site / "seedcore_thin" / "data")
    assert seen["cypher"] == sorted(p.stem for p in (REPO / "cypher" / "queries").glob("*.cypher"))
    assert len(seen["sql"]) == len(names) > 0  # type: ignore[arg-type]


@pytest.fixture
def unmigrated_graph_uri(falkordb_server: str) -> Iterator[str]:
    uri = f"{falkordb_server}/wheel_{uuid.uuid4().hex[:12]}"
    yield uri
    client = FalkorDBGraphClient(uri)
    try:
        client.delete_graph()
    finally:
        client.close()


def test_seedcore_migrate_and_named_queries_from_the_wheel(
    installed: InstalledWheel, pg_empty_dsn: str, unmigrated_graph_uri: str
) -> None:
    seedcore = str(installed.venv / "bin" / "seedcore")
    args = [seedcore, "migrate", "--pg-dsn", pg_empty_dsn, "--graph-uri", unmigrated_graph_uri]
    first = installed.run(args).stdout
    for path in (REPO / "sql" / "migrations").glob("*.sql"):
        assert f"postgres: applied {path.stem}" in first, first
    for path in (REPO / "cypher" / "migrations").glob("*.cypher"):
        assert f"graph: applied {path.stem}" in first, first
    assert installed.run(args).stdout.split("\n")[:2] == [
        "postgres: up to date",
        "graph: up to date",
    ]

    seen = installed.python_json(
        "import json\n"
        "from seedcore_thin.graph import connect_graph, load_fixture\n"
        f"client = connect_graph({unmigrated_graph_uri!r})\n"
        "load_fixture(client, 'example_fleet')\n"
        "print(json.dumps({'agents': sorted(s.agent_id for s in client.list_agent_specs())}))"
    )
    assert len(seen["agents"]) == 15  # type: ignore[arg-type]
    assert "llm-summarizer-1" in seen["agents"]  # type: ignore[operator]


def test_seedcore_root_points_the_wheel_at_an_edited_copy(
    installed: InstalledWheel, tmp_path: Path
) -> None:
    edited = tmp_path / "deployment"
    for folder in ("sql", "cypher"):
        shutil.copytree(REPO / folder, edited / folder)
    query = edited / "cypher" / "queries" / "list_agent_specs.cypher"
    query.write_text("// edited by the deployment\n" + query.read_text())
    seen = installed.python_json(
        "import json, seedcore_thin.queries as q\n"
        "print(json.dumps({'root': str(q.project_root()), 'text': q.cypher('list_agent_specs')}))",
        SEEDCORE_ROOT=str(edited),
    )
    assert seen["root"] == str(edited)
    assert str(seen["text"]).startswith("// edited by the deployment")


@pytest.mark.ray
def test_readme_python_block_runs_from_the_wheel(
    installed: InstalledWheel,
    pg_dsn: str,
    graph_uri: str,
    fleet_graph: FalkorDBGraphClient,
    docs_ray_address: str,
) -> None:
    readme = DOCS.parse(REPO / "README.md")
    block = next(e for e in readme.examples() if e.region.evaluator is run_python)
    assert "get_tier0_manager" in str(block.parsed)
    done = installed.run(
        [str(installed.python), "-c", str(block.parsed)],
        check=False,
        SEEDCORE_PG_DSN=pg_dsn,
        SEEDCORE_GRAPH_URI=graph_uri,
        SEEDCORE_NS=f"wheel-{uuid.uuid4().hex[:8]}",
        SEEDCORE_HOME=str(installed.workdir / ".seedcore"),
        RAY_ADDRESS=docs_ray_address,
    )
    assert done.returncode == 0, f"{done.stdout[-2000:]}\n{done.stderr[-3000:]}"


def test_seedcore_fleet_draws_from_the_wheel(
    installed: InstalledWheel, pg_dsn: str, graph_uri: str, fleet_graph: FalkorDBGraphClient
) -> None:
    """The page's templates are package data: the wheel carries them and renders the page."""
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
    assert {
        "seedcore_thin/cli/templates/fleet.html.j2",
        "seedcore_thin/cli/templates/fleet.dot.j2",
    } <= names
    page, dot = installed.workdir / "fleet.html", installed.workdir / "fleet.dot"
    seedcore = str(installed.venv / "bin" / "seedcore")
    args = ["fleet", "--graph-uri", graph_uri, "--pg-dsn", pg_dsn, "--html", str(page)]
    out = installed.run([seedcore, *args, "--dot", str(dot)]).stdout
    assert "15 agents in 4 organs (15 not live)" in out, out
    html = page.read_text(encoding="utf-8")
    assert html.count('class="agent"') == 15 and "llm-summarizer-1" in html
    assert dot.read_text(encoding="utf-8").count('label="MEMBER_OF"') == 15
