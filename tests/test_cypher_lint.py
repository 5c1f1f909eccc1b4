"""Neo4j's own Cypher front end checks every file in cypher/ (and rejects broken ones)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from seedcore_thin.queries import project_root

ROOT = project_root()
SCRIPT = ROOT / "scripts" / "lint_cypher.mjs"
LANGUAGE_SUPPORT = ROOT / "node_modules" / "@neo4j-cypher" / "language-support"

pytestmark = [
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed"),
    pytest.mark.skipif(
        not LANGUAGE_SUPPORT.is_dir(),
        reason="node_modules/@neo4j-cypher/language-support missing: run `npm ci` (make lint does)",
    ),
]


def _lint(*targets: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", str(SCRIPT), *map(str, targets)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_every_cypher_file_passes() -> None:
    done = _lint(ROOT / "cypher")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 error(s)" in done.stdout


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("MATCH (a:Agent)\nRETURN b\n", "Variable `b` not defined", 2),
        ("MATCH (a:Agent)\nRETURN a LIMT 3\n", "Invalid input 'LIMT'", 2),
        ("// params: $agent_id STRING\nMATCH (a:Agent {id: $other})\nRETURN a\n", "$other", 2),
        ("MATCH (a:Agent)\n\nRETURN a.num_cpus + 'x' * 2 AS nonsense\n", "Type mismatch", 3),
    ],
)
def test_a_broken_query_is_rejected_with_file_and_line(
    tmp_path: Path, text: str, message: str, line: int
) -> None:
    broken = tmp_path / "broken.cypher"
    broken.write_text(text)
    done = _lint(broken)
    assert done.returncode == 1, done.stdout
    report = next(row for row in done.stdout.splitlines() if message in row)
    assert f"broken.cypher:{line}:" in report
    assert ": error: " in report


def test_declared_parameters_are_not_errors(tmp_path: Path) -> None:
    ok = tmp_path / "ok.cypher"
    ok.write_text(
        "// ok: a test\n// params: $agent_id STRING\n// returns: id\n"
        "MATCH (a:Agent {id: $agent_id})\nRETURN a.id AS id\n"
    )
    done = _lint(ok)
    assert done.returncode == 0, done.stdout
