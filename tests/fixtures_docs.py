"""Doc tests: every ```python and ```bash block of README.md and docs/*.md runs (Sybil).

The rule a block runs by:
- Each ```python block runs in a fresh ``python`` process and each ```bash block in a fresh
  ``bash -e -o pipefail``; the block fails when the process exits non-zero. A block meant to
  exit non-zero says so itself (``cmd || [ $? -eq 2 ]``).
- The blocks of one file run in order and share one stack, as a reader's terminal would:
  a fresh migrated PostgreSQL database (``SEEDCORE_PG_DSN``), a fresh graph with the example
  fleet on the tests' embedded FalkorDB (``SEEDCORE_GRAPH_URI``), a Ray namespace of the file's
  own (``SEEDCORE_NS``) on one Ray head started for the doc tests (``RAY_ADDRESS``), and one
  working folder: a temp folder that links the repository's top-level entries and ``.venv``
  (the virtualenv running the tests), so ``.venv/bin/python scripts/x.py`` works there and a
  file one block writes is there for the next.
- ```cypher blocks run on that file's graph through the graph client.
- ``<!-- skip: next "why" -->`` (Sybil's own directive) marks a block not meant to run;
  ``<!-- xfail: why -->`` marks one known to fail today: it still runs, it must fail, and it
  turns the test red once it passes, so the marker goes as soon as the cause is fixed.
- ``<!-- file: PATH -->`` makes the next block a file rather than a command: it is written to
  PATH in the working folder (where later blocks find it) and, when Python, compiled.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sybil import Example, Region, Sybil
from sybil.parsers.markdown import CodeBlockParser, SkipParser
from sybil.parsers.markdown.lexers import DirectiveInHTMLCommentLexer

from seedcore_thin.graph import load_cypher_file, load_fixture
from seedcore_thin.graph.falkordb import FalkorDBGraphClient
from seedcore_thin.graph.migrations import migrate_graph
from seedcore_thin.local.postgres import scratch_database
from seedcore_thin.local.rayhead import start_ray, stop_ray

REPO = Path(__file__).resolve().parent.parent
BLOCK_TIMEOUT_S = 240
RAY_CPUS = 16  # logical: each file that reconciles the example fleet asks for ~2 CPUs
#: Run at the end of each file: its agents go, so the next file's fleet has room.
CLEANUP = (
    "import os\nfrom seedcore_thin import actors\n"
    "for space, name in actors.named_actors([os.environ['SEEDCORE_NS']]):\n"
    "    actors.kill(name, space, wait_s=2.0)\n"
)
#: Variables of the developer's own setup that must not leak into a block.
FOREIGN_ENV = ("SEEDCORE_", "RAY_ADDRESS", "RAY_NAMESPACE", "NEO4J_")
XFAIL_KEY = "__xfail_next__"
FILE_KEY = "__file_next__"


@dataclass(frozen=True)
class DocStack:
    """What the blocks of one Markdown file share."""

    workdir: Path
    env: dict[str, str]
    graph_uri: str


@pytest.fixture(scope="session")
def docs_ray_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Ray head of the doc tests' own (its own process group; stopped exactly, never
    ``ray stop``); detached agents the blocks create end with it."""
    home = tmp_path_factory.mktemp("docs-ray")
    address = start_ray(home, num_cpus=RAY_CPUS)
    try:
        yield address
    finally:
        stop_ray(home)


def _workdir(folder: Path) -> Path:
    for entry in REPO.iterdir():
        if entry.name not in {".git", ".venv", ".seedcore", "node_modules"}:
            (folder / entry.name).symlink_to(entry)
    (folder / ".venv").symlink_to(Path(sys.prefix))
    return folder


def _env(workdir: Path, pg_dsn: str, graph_uri: str, ray_address: str, namespace: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_ENV)}
    env.update(
        SEEDCORE_PG_DSN=pg_dsn,
        SEEDCORE_GRAPH_URI=graph_uri,
        SEEDCORE_NS=namespace,
        SEEDCORE_HOME=str(workdir / ".seedcore"),
        RAY_ADDRESS=ray_address,
        RAY_AUTH_MODE="disabled",
        RAY_USAGE_STATS_ENABLED="0",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )
    return env


@pytest.fixture(scope="module")  # a Sybil document is a pytest module: one stack per file
def doc_stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    pg_server_dsn: str,
    pg_template: str,
    falkordb_server: str,
    docs_ray_address: str,
) -> Iterator[DocStack]:
    stem = Path(str(request.node.path)).stem.lower()
    tag = uuid.uuid4().hex[:8]
    graph_uri = f"{falkordb_server}/doc_{stem}_{tag}"
    client = FalkorDBGraphClient(graph_uri)
    try:
        migrate_graph(client)
        load_fixture(client, "example_fleet")
        with scratch_database(pg_server_dsn, "doc", template=pg_template) as pg_dsn:
            workdir = _workdir(tmp_path_factory.mktemp(f"doc-{stem}"))
            env = _env(workdir, pg_dsn, graph_uri, docs_ray_address, f"doc-{stem}-{tag}")
            try:
                yield DocStack(workdir, env, graph_uri)
            finally:
                subprocess.run([sys.executable, "-c", CLEANUP], env=env, timeout=120, check=False)
    finally:
        client.delete_graph()
        client.close()


def _run(example: Example, args: list[str]) -> str | None:
    """Run one block in a fresh process; a failure message, or None when it exited 0."""
    stack: DocStack = example.namespace["doc_stack"]
    try:
        done = subprocess.run(
            args,
            cwd=stack.workdir,
            env=stack.env,
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return f"{example.path}:{example.line}: still running after {BLOCK_TIMEOUT_S} s"
    if done.returncode == 0:
        return None
    return (
        f"{example.path}:{example.line}: {args[0]} exited {done.returncode}\n"
        f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
    )


def _outcome(example: Example, failure: str | None) -> str | None:
    """Apply a pending ``xfail`` marker: it must fail, and passing is an error."""
    reason = example.document.namespace.pop(XFAIL_KEY, None)
    if reason is None:
        return failure
    if failure is None:
        return f"{example.path}:{example.line} passes now: remove its xfail marker ({reason})"
    pytest.xfail(f"{reason}\n{failure}")


def _as_file(example: Example) -> bool:
    """Write the block to the path a pending ``file`` marker names; False when none."""
    name = example.document.namespace.pop(FILE_KEY, None)
    if name is None:
        return False
    stack: DocStack = example.namespace["doc_stack"]
    path = stack.workdir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(str(example.parsed), encoding="utf-8")
    if path.suffix == ".py":
        compile(str(example.parsed), str(path), "exec")
    return True


def run_python(example: Example) -> str | None:
    if _as_file(example):
        return None
    return _outcome(example, _run(example, [sys.executable, "-c", str(example.parsed)]))


def run_bash(example: Example) -> str | None:
    if _as_file(example):
        return None
    args = ["bash", "-e", "-o", "pipefail", "-c", str(example.parsed)]
    return _outcome(example, _run(example, args))


def run_cypher(example: Example) -> str | None:
    stack: DocStack = example.namespace["doc_stack"]
    path = stack.workdir / f".block-{example.line}.cypher"
    path.write_text(str(example.parsed), encoding="utf-8")
    client = FalkorDBGraphClient(stack.graph_uri)
    try:
        ran = load_cypher_file(client, path)
    finally:
        client.close()
    return _outcome(example, None if ran else f"{example.path}:{example.line}: no statement")


class MarkerParser:
    """``<!-- NAME: argument -->``: remembers the argument for the next block (see the module
    doc for ``xfail`` and ``file``)."""

    def __init__(self, directive: str, key: str) -> None:
        self.lexer = DirectiveInHTMLCommentLexer(directive=directive, arguments=".+?")
        self.key = key

    def __call__(self, document: object) -> Iterator[Region]:
        for lexed in self.lexer(document):  # type: ignore[arg-type]
            argument = str(lexed.lexemes["arguments"]).strip()
            yield Region(lexed.start, lexed.end, argument, self.mark)

    def mark(self, example: Example) -> None:
        example.document.namespace[self.key] = example.parsed


DOCS = Sybil(
    parsers=[
        SkipParser(),
        MarkerParser("xfail", XFAIL_KEY),
        MarkerParser("file", FILE_KEY),
        CodeBlockParser("python", run_python),
        CodeBlockParser("bash", run_bash),
        CodeBlockParser("cypher", run_cypher),
    ],
    patterns=["README.md", "docs/*.md"],
    path=str(REPO),
    fixtures=["doc_stack"],
)
pytest_collect_file = DOCS.pytest()
