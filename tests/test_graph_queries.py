"""Every named Cypher statement against a real embedded FalkorDB, on the example fleet."""

from __future__ import annotations

import re
from typing import Any

import pytest

from seedcore_thin.errors import GraphQueryError
from seedcore_thin.graph import (
    load_cypher_file,
    load_fixture,
    remove_agent,
    upsert_agent,
    upsert_specs,
)
from seedcore_thin.graph.falkordb import FalkorDBGraphClient
from seedcore_thin.graph.schema import split_statements
from seedcore_thin.queries import cypher_dir, project_root
from seedcore_thin.specs import AgentSpec, OrganSpec, Resources
from seedcore_thin.tasks import TaskRequest

EXAMPLE_AGENTS = [
    "embedder-1",
    "faq-1",
    "ledger-analyst-1",
    "llm-summarizer-1",
    "llm-summarizer-2",
    "resnet-classifier-1",
    "risk-scorer-1",
    "translator-1",
    "triage-1",
    "triage-2",
    "triage-3",
    "vision-gpu-1",
    "web-researcher-1",
    "yolo-detector-1",
    "yolo-detector-2",
]

TEST_FIXTURES = cypher_dir() / "fixtures" / "tests"
_PLACEHOLDER: dict[str, Any] = {"INTEGER": 1, "FLOAT": 0.5, "BOOLEAN": False}


_PARAM_RE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)(?:\s*:?\s*([A-Z]+(?:<[A-Z]+>)?))?")


def header_parameters(text: str) -> dict[str, str]:
    """``{name: TYPE}`` declared by a query file's ``// params:`` header (TYPE may be '').

    The same convention ``scripts/lint_cypher.mjs`` reads to declare parameters to Neo4j's
    linter; here it calls every query file with values of the declared types.
    """
    params: dict[str, str] = {}
    in_params = False
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("//"):
            break
        body = stripped[2:].strip()
        if re.match(r"^params:", body, re.I):
            in_params = True
        elif re.match(r"^[a-z_]+:", body, re.I):
            in_params = False
        if in_params:
            for match in _PARAM_RE.finditer(body):
                params[match.group(1)] = match.group(2) or ""
    return params


def _placeholder(type_name: str) -> Any:
    if type_name.startswith("LIST<MAP"):
        return []
    if type_name.startswith("LIST"):
        return ["placeholder"]
    return _PLACEHOLDER.get(type_name, "placeholder")


@pytest.mark.parametrize(
    "name", sorted(p.stem for p in (cypher_dir() / "queries").glob("*.cypher"))
)
def test_every_query_file_runs_with_its_declared_parameters(
    name: str, fleet_graph: FalkorDBGraphClient
) -> None:
    """Portability smoke test: each file parses and runs on FalkorDB as written."""
    text = (cypher_dir() / "queries" / f"{name}.cypher").read_text()
    assert text.lstrip().startswith(f"// {name}"), "header must start with the query name"
    assert "// returns:" in text, "header must name the returned columns"
    params = {key: _placeholder(kind) for key, kind in header_parameters(text).items()}
    rows = fleet_graph.run(name, **params)
    assert isinstance(rows, list)


def test_list_agent_specs_reads_the_whole_example_fleet(fleet_graph: FalkorDBGraphClient) -> None:
    result = fleet_graph.read_agent_specs()
    assert result.invalid == []
    assert [s.agent_id for s in result.valid] == EXAMPLE_AGENTS
    by_id = {s.agent_id: s for s in result.valid}
    gpu = by_id["vision-gpu-1"]
    assert gpu.resources.num_gpus == 1.0
    assert gpu.organ_id == "vision"
    assert gpu.skills == ["object_detection", "segmentation"]
    assert by_id["translator-1"].policies == ["eu_data_residency"]
    assert by_id["translator-1"].models == ["marian-mt-en-de", "nllb-200"]
    assert gpu.services == ["object_store"] and by_id["translator-1"].services == []
    assert by_id["yolo-detector-1"].metadata == {"source": "example_fleet"}
    pooled = sorted(s.agent_id for s in result.valid if s.placement == "pooled")
    assert pooled == ["faq-1", "triage-1", "triage-2", "triage-3"]  # the support organ
    total_cpus = sum(s.resources.num_cpus for s in result.valid if s.resources.num_gpus == 0)
    assert total_cpus <= 2.0  # the CPU agents fit on a 2-core Ray


def test_list_organ_specs(fleet_graph: FalkorDBGraphClient) -> None:
    organs = {o.organ_id: o for o in fleet_graph.list_organ_specs()}
    assert sorted(organs) == ["finance", "language", "support", "vision"]
    assert organs["finance"].governed_by_policies == ["no_external_egress", "pii_restricted"]
    assert organs["vision"].uses_services == ["object_store"]
    assert "web_search" in organs["language"].provides_skills


def test_policies_are_data_with_forbids_lists(fleet_graph: FalkorDBGraphClient) -> None:
    rows = fleet_graph.run("agents_governed_by_policy", policy_id="no_external_egress")
    assert [(r["agent_id"], r["via"]) for r in rows] == [
        ("ledger-analyst-1", "organ"),
        ("risk-scorer-1", "organ"),
    ]
    direct = fleet_graph.run("agents_governed_by_policy", policy_id="eu_data_residency")
    assert direct == [{"agent_id": "translator-1", "organ_id": "language", "via": "agent"}]


def test_operator_questions(fleet_graph: FalkorDBGraphClient) -> None:
    vision = fleet_graph.run("agents_in_organ", organ_id="vision")
    assert [r["agent_id"] for r in vision] == [
        "resnet-classifier-1",
        "vision-gpu-1",
        "yolo-detector-1",
        "yolo-detector-2",
    ]
    assert fleet_graph.run("agents_in_organ", organ_id="nope") == []
    assert fleet_graph.run("organs_governed_by_policy", policy_id="pii_restricted") == [
        {"organ_id": "finance", "agent_count": 2}
    ]
    deprecated = fleet_graph.run("agents_using_model", model_name="marian-mt-en-de")
    assert deprecated == [
        {"agent_id": "translator-1", "organ_id": "language", "model_deprecated": True}
    ]
    llama = fleet_graph.run("agents_using_model", model_name="llama-3-8b")
    assert len(llama) == 4
    assert not any(r["model_deprecated"] for r in llama)


def test_version_moves_only_on_desired_state_commands(graph: FalkorDBGraphClient) -> None:
    assert graph.version() == 0  # V0002 creates the counter at 0
    load_fixture(graph)
    assert graph.version() == 1
    graph.run("list_agent_specs")
    graph.run("agents_in_organ", organ_id="vision")
    assert graph.version() == 1, "reads never bump the version"
    spec = AgentSpec(agent_id="new-agent", organ_id="vision", skills=["object_detection"])
    assert upsert_agent(graph, spec) == 2
    assert upsert_agent(graph, spec) == 3, "every write through a command bumps it"
    assert remove_agent(graph, "new-agent") is True
    assert graph.version() == 4
    assert remove_agent(graph, "new-agent") is False
    assert graph.version() == 4, "removing nothing changes nothing"


def test_upsert_agent_replaces_edges_and_round_trips(fleet_graph: FalkorDBGraphClient) -> None:
    spec = AgentSpec(
        agent_id="yolo-detector-1",
        organ_id="language",
        name="moved",
        namespace="prod",
        skills=["summarization", "brand_new_skill"],
        models=["llama-3-8b"],
        services=["vector_db", "brand_new_service"],
        policies=["no_external_egress"],
        resources=Resources(num_cpus=0.3, num_gpus=0, memory_mb=128, custom={"tpu": 2}),
        max_concurrency=3,
        metadata={"why": "test"},
    )
    upsert_agent(fleet_graph, spec)
    by_id = {s.agent_id: s for s in fleet_graph.list_agent_specs()}
    assert by_id["yolo-detector-1"] == spec
    vision = [r["agent_id"] for r in fleet_graph.run("agents_in_organ", organ_id="vision")]
    assert "yolo-detector-1" not in vision, "the old MEMBER_OF edge is gone"
    assert fleet_graph.run("agents_using_model", model_name="yolov8n") == [
        {"agent_id": "yolo-detector-2", "organ_id": "vision", "model_deprecated": False}
    ]
    forbids = fleet_graph.run("agents_governed_by_policy", policy_id="no_external_egress")
    assert ("yolo-detector-1", "agent") in {(r["agent_id"], r["via"]) for r in forbids}
    fewer = spec.model_copy(update={"services": ["vector_db"]})
    upsert_agent(fleet_graph, fewer)
    [row] = fleet_graph.agent_spec_rows("yolo-detector-1")
    assert row["services"] == ["vector_db"], "the old USES_SERVICE edge is gone"


def test_list_agent_specs_reads_one_agent_by_its_optional_id(
    fleet_graph: FalkorDBGraphClient,
) -> None:
    everyone = fleet_graph.agent_spec_rows()
    assert [r["agent_id"] for r in everyone] == EXAMPLE_AGENTS
    by_id = {r["agent_id"]: r for r in everyone}
    for agent_id in ("translator-1", "vision-gpu-1"):
        assert fleet_graph.agent_spec_rows(agent_id) == [by_id[agent_id]]
    assert fleet_graph.agent_spec_rows("nobody") == []


def test_each_routing_rule_is_tagged_in_both_route_queries() -> None:
    """`// rule: NAME` marks where a rule is applied; one grep finds both halves."""
    rules = {"member", "organ", "skills", "models", "gpus", "agent_policies", "organ_policies"}
    for name in ("route_candidates", "route_explain"):
        text = (cypher_dir() / "queries" / f"{name}.cypher").read_text()
        assert set(re.findall(r"^\s*// rule: (\w+)", text, re.M)) == rules, name


def test_upsert_agent_creates_unknown_policy_that_forbids_nothing(
    graph: FalkorDBGraphClient,
) -> None:
    upsert_agent(graph, AgentSpec(agent_id="a1", organ_id="o1", policies=["typo_policy"]))
    rows = graph.run("agents_governed_by_policy", policy_id="typo_policy")
    assert rows == [{"agent_id": "a1", "organ_id": "o1", "via": "agent"}]


def test_builtin_guardrail_holds_without_a_policy_node(graph: FalkorDBGraphClient) -> None:
    """The design's metadata string names no_external_egress; nobody wrote the Policy."""
    upsert_specs(
        graph,
        [
            AgentSpec(
                agent_id="direct", organ_id="o1", metadata={"policies": "a,no_external_egress"}
            ),
            AgentSpec(agent_id="free", organ_id="o1"),
            AgentSpec(agent_id="inherited", organ_id="o2"),
        ],
        [OrganSpec(organ_id="o2", governed_by_policies=["no_external_egress"])],
    )
    network = TaskRequest(task_type="t", requires_external_network=True)
    rows = graph.run("route_candidates", **network.route_params(), limit=10)
    assert [r["agent_id"] for r in rows] == ["free"]
    reasons = {
        r["agent_id"]: r["reasons"] for r in graph.run("route_explain", **network.route_params())
    }
    assert reasons == {
        "direct": ["policy no_external_egress forbids external_network"],
        "free": [],
        "inherited": ["policy no_external_egress forbids external_network (through organ o2)"],
    }
    rows = graph.run("route_candidates", **TaskRequest(task_type="t").route_params(), limit=10)
    assert sorted(r["agent_id"] for r in rows) == ["direct", "free", "inherited"]


def test_fixture_loading_is_idempotent(fleet_graph: FalkorDBGraphClient) -> None:
    before = fleet_graph.list_agent_specs()
    load_fixture(fleet_graph)
    assert fleet_graph.list_agent_specs() == before
    assert fleet_graph.run("organs_governed_by_policy", policy_id="no_external_egress") == [
        {"organ_id": "finance", "agent_count": 2}
    ]


def test_unique_keys_are_enforced(fleet_graph: FalkorDBGraphClient) -> None:
    with pytest.raises(GraphQueryError, match="unique constraint"):
        load_cypher_file(fleet_graph, TEST_FIXTURES / "duplicate_agent.cypher")
    assert len(fleet_graph.run("agents_in_organ", organ_id="finance")) == 2


def test_read_only_queries_go_through_the_read_only_command(
    fleet_graph: FalkorDBGraphClient,
) -> None:
    """FalkorDB's GRAPH.RO_QUERY refuses writes: reads are routed read-only."""
    [write] = split_statements((TEST_FIXTURES / "duplicate_agent.cypher").read_text())
    with pytest.raises(GraphQueryError, match="read-only"):
        fleet_graph._execute(write, {}, write=False)
    assert fleet_graph.run("desired_state_version") == [{"version": 1}]


def test_the_dba_examples_in_the_docs_run_and_bump_the_version(
    fleet_graph: FalkorDBGraphClient,
) -> None:
    """docs/graph-model.md shows plain Cypher for adding an agent, a skill, a policy."""
    doc = (project_root() / "docs" / "graph-model.md").read_text()
    examples = [b for b in re.findall(r"```cypher\n(.*?)```", doc, re.S) if "DesiredState" in b]
    assert len(examples) == 3
    before = fleet_graph.version()
    for example in examples:
        for statement in split_statements(example):
            fleet_graph.execute_statement(statement)
    assert fleet_graph.version() == before + 3
    result = fleet_graph.read_agent_specs()
    assert result.invalid == []
    added = next(s for s in result.valid if s.agent_id == "yolo-detector-3")
    assert added.organ_id == "vision" and added.policies == ["eu_data_residency"]
    governed = fleet_graph.run("agents_governed_by_policy", policy_id="no_gpu_burst")
    assert {r["organ_id"] for r in governed} == {"language"}
