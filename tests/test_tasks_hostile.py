"""Hostile tasks: whatever a caller sends, the answer is routed, InvalidTask or NoQualifiedAgent.

Hypothesis feeds arbitrary JSON values and strings (lone surrogates, control characters and
NUL, quotes, injection strings, deep nesting, huge lists and payloads) as whole tasks, as
field values and as JSON text, to the Python API against the example fleet on the session's
real FalkorDB, and to ``route.py`` (in-process, plus real subprocess runs) against that graph
and a real registry database. Any other exception, or an InvalidTask after the graph was
asked, fails. No Ray: routing without ``--execute`` only decides.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from seedcore_thin.cli import route as route_cli
from seedcore_thin.errors import InvalidTask, NoQualifiedAgent
from seedcore_thin.registry import InstanceRecord
from seedcore_thin.router import LiveInstance, Router, StaticLive
from seedcore_thin.tasks import (
    MAX_DATA_BYTES,
    MAX_DATA_DEPTH,
    MAX_NAME_CHARS,
    MAX_NAMES,
    MAX_TASK_BYTES,
    TaskRequest,
)
from tests.fixtures_pg import admin_registry

ROOT = Path(__file__).resolve().parents[1]
_BAD = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")  # what a name may not hold
AGENTS = [
    "yolo-detector-1",
    "yolo-detector-2",
    "resnet-classifier-1",
    "llm-summarizer-1",
    "llm-summarizer-2",
    "web-researcher-1",
    "translator-1",
    "ledger-analyst-1",
    "risk-scorer-1",
]  # the example fleet but vision-gpu-1, so a GPU task is refused with reasons
SKILLS = ["object_detection", "summarization", "translation", "anomaly_detection"]
MODELS = ["yolov8n", "llama-3-8b", "xgboost-risk"]
ORGANS = ["vision", "language", "finance"]
CAPS = ["external_network", "pii_export"]
NASTY = [
    "\ud83d",
    "a\udc00b",
    "a\x00b",
    "\x00",
    "tab\there",
    "line\nbreak",
    "\x7f",
    "\x9b",
    "\u2028",
    "\ufeff",
    "\U0001f600",
    "'",
    '"',
    "\\",
    "\\u0000",
    "`",
    "' OR 1=1 --",
    "x'); DROP TABLE seedcore.instance; --",
    '"}) MATCH (n) DETACH DELETE n //',
    "$skills",
    " ",
    "x" * (MAX_NAME_CHARS + 1),
]


def _deep(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for level in range(depth):
        value = {"a": value} if level % 2 else [value]
    return value


class Huge:
    """A prebuilt oversized value, named: hypothesis prints examples, and these overflow it."""

    def __init__(self, name: str, value: Any) -> None:
        self.name, self.value = name, value

    def __repr__(self) -> str:
        return f"HUGE[{self.name!r}]"


HUGE = [
    Huge("names", [f"s{i}" for i in range(MAX_NAMES + 1)]),
    Huge("20k-names", ["summarization"] * 20_000),
    Huge("long-name", "y" * 1_000_000),
    Huge("big-data", {"blob": "z" * (MAX_DATA_BYTES + 1)}),
    Huge("wide-data", {"w": [0] * MAX_DATA_BYTES}),
    Huge("deep-data", {"d": _deep(1_200)}),
    Huge("just-too-deep", {"d": _deep(MAX_DATA_DEPTH)}),
    Huge("deep-enough", {"d": _deep(MAX_DATA_DEPTH - 1)}),
    Huge("big-int", {"n": 10**5000}),
]  # built once; hypothesis picks among them
DEEP = HUGE[5]


def _unwrap(task: Any) -> Any:
    """The task with its Huge placeholders (whole task or field values) replaced."""
    if isinstance(task, Huge):
        return task.value
    if isinstance(task, dict):
        return {k: v.value if isinstance(v, Huge) else v for k, v in task.items()}
    return task


texts = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=12),  # surrogates included
    st.sampled_from(NASTY),
)
#: Names that are odd but valid (quotes, injections, emoji, format characters): these
#: pass validation and must then route or be refused, never break a query.
odd_names = st.one_of(
    st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=12),
    st.sampled_from([n for n in NASTY if not _BAD.search(n) and len(n) <= MAX_NAME_CHARS]),
).filter(str.strip)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)
huge = st.sampled_from(HUGE)
hostile = st.one_of(json_values, huge, texts, st.lists(texts, max_size=3))


def _names(real: list[str], most: int) -> st.SearchStrategy[list[str]]:
    """Mostly names of the fleet, sometimes odd ones."""
    return st.lists(st.sampled_from(real) | st.sampled_from(real) | odd_names, max_size=most)


plausible = st.fixed_dictionaries(
    {"task_type": st.just("t") | odd_names},
    optional={
        "task_id": odd_names,
        "required_skills": _names(SKILLS, 2),
        "required_models": _names(MODELS, 1),
        "organ_id": st.none() | st.sampled_from(ORGANS) | odd_names,
        "requires": _names(CAPS, 2),
        "requires_external_network": st.booleans(),
        "min_gpus": st.sampled_from([0, 0.5, 1]),
        "data": st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5)),
        "timeout_s": st.sampled_from([1, 30.0]),
    },
)
FIELDS = [*TaskRequest.model_fields, "something_else"]
one_bad_field = st.tuples(plausible, st.sampled_from(FIELDS), hostile).map(
    lambda t: {**t[0], t[1]: t[2]}
)
tasks = st.one_of(plausible, one_bad_field, one_bad_field, json_values, huge, st.binary())


def _as_text(task: Any) -> str | bytes:
    """JSON text of a generated task (a lone surrogate is escaped, as json.dumps does)."""
    if isinstance(task, bytes):
        return task
    try:
        return json.dumps(task, allow_nan=True)
    except ValueError:  # an integer too long to print
        return '{"task_type": "x", "min_gpus": ' + "9" * 5000 + "}"
    except RecursionError:  # deeper than json.dumps goes
        return '{"task_type": "x", "data": {"d": ' + "[" * 1200 + "]" * 1200 + "}}"


class _CountingGraph:
    """The real graph, counting calls, to prove an invalid task never reached it."""

    def __init__(self, graph: Any) -> None:
        self._graph, self.calls = graph, 0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._graph, name)
        if not callable(attribute):
            return attribute

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return attribute(*args, **kwargs)

        return counted


def _assert_printable(err: InvalidTask) -> None:
    """The error can be printed and logged anywhere (the field may be a hostile key)."""
    assert err.field
    str(err).encode("utf-8")  # no lone surrogate
    assert not _BAD.search(str(err)), repr(str(err))


def _outcome(
    graph: _CountingGraph, call: Callable[[], Any], full: Callable[[], dict[str, list[str]]]
) -> str:
    before = graph.calls
    try:
        call()
    except InvalidTask as err:
        _assert_printable(err)
        assert graph.calls == before, "the graph was asked before the task was validated"
        return "invalid"
    except NoQualifiedAgent as refusal:
        # the closest agents' reasons as explain() gives them; every other agent of the
        # fleet has a reason, counted in the summary
        everyone = full()
        assert set(everyone) >= set(AGENTS) and all(everyone.values())
        assert all(refusal.reasons[a] == everyone[a] for a in refusal.reasons)
        assert sum(refusal.summary.values()) >= len(set(everyone) - set(refusal.reasons))
        str(refusal).encode("utf-8")
        return "refused"
    return "routed"


@pytest.fixture
def api_router(fleet_graph: Any) -> tuple[Router, _CountingGraph]:
    graph = _CountingGraph(fleet_graph)
    live = {a: LiveInstance(a, str(uuid.uuid4()), a, "hostile") for a in AGENTS}
    return Router(graph, StaticLive(live), namespace="hostile"), graph  # type: ignore[arg-type]


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(task=tasks, as_text=st.booleans())
@example(task={"task_type": "x", "required_skills": ["\ud83d"]}, as_text=False)
@example(task={"task_type": "x", "required_skills": ["a\x00b"]}, as_text=False)
@example(task={"task_type": "x", "organ_id": "a\x00b"}, as_text=True)
@example(task={"task_type": "x", "data": DEEP}, as_text=False)
@example(task={"task_type": "x", "data": DEEP}, as_text=True)
@example(task={"task_type": "x", "required_skills": ["summarization"]}, as_text=False)
def test_python_api_answers_every_task_as_documented(
    api_router: tuple[Router, _CountingGraph], task: Any, as_text: bool
) -> None:
    router, graph = api_router
    task = _unwrap(task)
    raw = _as_text(task) if as_text else task
    outcome = _outcome(graph, lambda: router.route(raw), lambda: router.explain(raw))
    event(outcome)
    if outcome == "routed":
        parsed = TaskRequest.parse(raw)
        assert router.explain(parsed)  # the explanation runs on the same names
        json.dumps(parsed.payload(), allow_nan=False).encode("utf-8")  # Ray, logs, the CLI
    if task == {"task_type": "x", "required_skills": ["summarization"]}:
        assert outcome == "routed"


@pytest.mark.parametrize(
    ("task", "field", "says"),
    [
        ({"task_type": "x", "required_skills": ["\ud83d"]}, "required_skills", "surrogate"),
        ({"task_type": "x", "required_skills": ["a\x00b"]}, "required_skills", "U+0000"),
        ({"task_type": "x", "organ_id": "fin\x00ance"}, "organ_id", "control character"),
        ({"task_type": "x\ud83d"}, "task_type", "unicode"),
        ({"task_type": "x", "task_id": "a\nb"}, "task_id", "U+000A"),
        ({"task_type": "x", "requires": ["a"] * (MAX_NAMES + 1)}, "requires", "at most"),
        ({"task_type": "x" * (MAX_NAME_CHARS + 1)}, "task_type", "longer than"),
        ({"task_type": "x", "data": {"d": _deep(1_200)}}, "data", "nested deeper"),
        ({"task_type": "x", "data": {"d": _deep(MAX_DATA_DEPTH)}}, "data", "nested deeper"),
        ({"task_type": "x", "data": {"k": "\udfff"}}, "data", "surrogate"),
        ({"task_type": "x", "data": {"blob": "z" * MAX_DATA_BYTES}}, "data", "larger than"),
        ({"task_type": "x", "data": {"w": [0] * MAX_DATA_BYTES}}, "data", "larger than"),
        ({"task_type": "x", "data": {"n": 10**5000}}, "data", "JSON-serialisable"),
        ({"task_type": "x", "\x00\x9b" * 99: 1}, "\\u0000\\u009b" * 60 + "...", "Extra"),
        ({"task_type": "x", "\ud83d": 1}, "<task>", "unicode"),
        ('{"task_type": "x", "data": ' + "[" * 1200 + "]" * 1200 + "}", "<task>", "JSON"),
        (b'{"task_type": "\xff"}', "<task>", "unicode"),
        (b" " * (MAX_TASK_BYTES + 1), "<task>", "longer than"),
    ],
)
def test_hostile_values_are_invalid_tasks_naming_the_field(
    task: Any, field: str, says: str
) -> None:
    with pytest.raises(InvalidTask) as err:
        TaskRequest.parse(task)
    assert err.value.field == field
    assert says in err.value.reason
    _assert_printable(err.value)


def test_a_cyclic_payload_is_an_invalid_task() -> None:
    cycle: dict[str, Any] = {}
    cycle["self"] = cycle
    with pytest.raises(InvalidTask) as err:
        TaskRequest.parse({"task_type": "x", "data": cycle})
    assert err.value.field == "data"


def test_deep_data_within_the_limit_and_harmless_characters_pass() -> None:
    task = TaskRequest.parse(
        {
            "task_type": "caf\u00e9 \U0001f600",
            "required_skills": ["' OR 1=1 --", '"}) MATCH (n) //', "\\"],
            "data": {"d": _deep(MAX_DATA_DEPTH - 1), "text": "line\nbreak\x00ok in a payload"},
        }
    )
    assert task.required_skills == ['"}) MATCH (n) //', "' OR 1=1 --", "\\"]


# --- the command line ---------------------------------------------------------------------


@pytest.fixture
def cli_args(graph_uri: str, fleet_graph: Any, pg_dsn: str) -> list[str]:
    """``route.py`` options on the example fleet, with its agents live in the registry."""
    namespace = f"hostile-{uuid.uuid4().hex[:6]}"
    with admin_registry(pg_dsn) as registry:
        epoch = registry.call("current_epoch")
        for agent_id in AGENTS:
            instance = uuid.uuid4()
            registry.register_instance(
                InstanceRecord(instance, agent_id, epoch, agent_id, namespace)
            )
            assert registry.call("beat", instance_id=instance, epoch=epoch)
    return ["--json", "--graph-uri", graph_uri, "--pg-dsn", pg_dsn, "--namespace", namespace]


def _run_cli(path: Path, args: list[str]) -> tuple[int, dict[str, Any]]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = route_cli.main([str(path), *args])
    return code, json.loads(out.getvalue())


def _check_cli_answer(code: int, doc: dict[str, Any]) -> str:
    """Exit 0 routed, 4 refused, 1 with InvalidTask: nothing else is acceptable."""
    expected = {0: (True, None), 4: (False, "NoQualifiedAgent"), 1: (False, "InvalidTask")}
    assert code in expected, (code, doc)
    assert (doc["routed"], doc.get("error")) == expected[code], doc
    return {0: "routed", 4: "refused", 1: "invalid"}[code]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(task=tasks)
@example(task={"task_type": "x", "required_skills": ["a\x00b"]})
@example(task={"task_type": "x", "required_skills": ["summarization"]})
@example(task={"task_type": "x", "min_gpus": 1})
def test_route_cli_answers_every_task_with_a_documented_exit_code(
    cli_args: list[str], tmp_path: Path, task: Any
) -> None:
    path = tmp_path / "task.json"
    text = _as_text(_unwrap(task))
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    outcome = _check_cli_answer(*_run_cli(path, cli_args))
    event(outcome)
    if task == {"task_type": "x", "required_skills": ["summarization"]}:
        assert outcome == "routed"
    if task == {"task_type": "x", "min_gpus": 1}:
        assert outcome == "refused"


def test_route_cli_validates_before_contacting_anything(tmp_path: Path) -> None:
    """An unreachable graph and registry: a bad task is still an InvalidTask, a bad file too."""
    bad = tmp_path / "bad.json"
    bad.write_text('{"task_type": "x", "required_skills": ["a\\u0000b"]}', encoding="utf-8")
    nowhere = ["--json", "--graph-uri", "falkordb://127.0.0.1:1/x", "--pg-dsn", "host=/none"]
    code, doc = _run_cli(bad, nowhere)
    assert (code, doc["error"]) == (1, "InvalidTask")
    assert "required_skills" in doc["message"] and "U+0000" in doc["message"]
    code, doc = _run_cli(tmp_path / "missing\x00.json", nowhere)
    assert (code, doc["error"]) == (1, "InvalidTask")
    oversized = tmp_path / "big.json"
    oversized.write_bytes(b" " * (MAX_TASK_BYTES + 10))
    code, doc = _run_cli(oversized, nowhere)
    assert (code, doc["error"]) == (1, "InvalidTask")


@pytest.mark.slow
def test_route_script_in_a_real_process(cli_args: list[str]) -> None:
    """The issue's reproduction through ``scripts/route.py`` and standard input."""

    def run(task: bytes) -> str:
        done = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "route.py"), "-", *cli_args],
            input=task,
            capture_output=True,
            timeout=120,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            check=False,
        )
        return _check_cli_answer(done.returncode, json.loads(done.stdout or b"{}"))

    assert run(b'{"task_type": "x", "required_skills": ["a\\u0000b"]}') == "invalid"
    assert run(b'{"task_type": "x", "required_skills": ["summarization"]}') == "routed"
