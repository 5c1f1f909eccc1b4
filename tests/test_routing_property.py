"""Property: over random fleets and tasks, routing obeys every rule, checked by a Python oracle.

Each example writes a random fleet (organs, policies with random ``forbids``, agents with
random skills, models, GPUs and direct policies) into a fresh graph on the session's real
FalkorDB, then checks that (organs and agents may also name the built-in
``no_external_egress``, which no example declares: migration V0004 provides it):

- ``route_candidates`` returns exactly the agents the oracle qualifies;
- ``route_explain`` gives each agent exactly the reasons the oracle expects (none for the
  qualified ones);
- the router chooses a qualified live agent (the lowest id, all being idle, when its first
  page of candidates held them all), or refuses with the oracle's reasons for the closest
  agents (every qualified one among them) and a summary that counts exactly the oracle's
  reasons of all the others.

Only the session-scoped ``falkordb_server`` fixture is used, and each example makes (and
deletes) its own graph, so no state leaks between examples and hypothesis' function-scoped
fixture health check has nothing to warn about.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from seedcore_thin.errors import NoQualifiedAgent
from seedcore_thin.graph.falkordb import FalkorDBGraphClient
from seedcore_thin.graph.migrations import migrate_graph
from seedcore_thin.local.fleetgen import GeneratedFleet, load_fleet
from seedcore_thin.router import NOT_LIVE, LiveInstance, Router, StaticLive, candidates_from_rows
from seedcore_thin.specs import AgentSpec, OrganSpec, PolicySpec, Resources
from seedcore_thin.tasks import TaskRequest

SKILLS = ["s0", "s1", "s2", "s3"]
MODELS = ["m0", "m1", "m2"]
ORGANS = ["organ-a", "organ-b", "organ-c"]
POLICIES = ["p-net", "p-data", "p-region"]
BUILTIN_POLICIES = {"no_external_egress": ["external_network"]}
NAMED_POLICIES = [*POLICIES, *BUILTIN_POLICIES]
CAPS = ["external_network", "pii_export", "cross_region_transfer"]
GPUS = [0.0, 0.5, 1.0, 2.0]


@dataclass(frozen=True)
class World:
    fleet: GeneratedFleet
    live: frozenset[str]


def _subset(items: list[str], max_size: int | None = None) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(items), unique=True, max_size=max_size or len(items))


@st.composite
def worlds(draw: st.DrawFn) -> World:
    policies = [PolicySpec(policy_id=p, forbids=draw(_subset(CAPS, 2))) for p in POLICIES]
    n_organs = draw(st.integers(1, len(ORGANS)))
    organs = [
        OrganSpec(organ_id=o, governed_by_policies=draw(_subset(NAMED_POLICIES, 2)))
        for o in ORGANS[:n_organs]
    ]
    agents = []
    for i in range(draw(st.integers(1, 10))):
        agents.append(
            AgentSpec(
                agent_id=f"agent-{i:02d}",
                organ_id=draw(st.sampled_from(ORGANS[:n_organs])),
                skills=draw(_subset(SKILLS, 3)),
                models=draw(_subset(MODELS, 2)),
                resources=Resources(num_cpus=0.1, num_gpus=draw(st.sampled_from(GPUS))),
                policies=draw(_subset(NAMED_POLICIES, 1)),
            )
        )
    live = draw(st.frozensets(st.sampled_from([a.agent_id for a in agents])))
    return World(GeneratedFleet(policies=policies, organs=organs, agents=agents), live)


tasks = st.builds(
    TaskRequest,
    task_type=st.just("prop"),
    required_skills=_subset(SKILLS, 2),
    required_models=_subset(MODELS, 1),
    organ_id=st.one_of(st.none(), st.sampled_from([*ORGANS, "organ-nowhere"])),
    min_gpus=st.sampled_from(GPUS),
    requires=_subset(CAPS, 2),
    requires_external_network=st.booleans(),
)


def _gpus(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:.2f}"


def oracle_reasons(task: TaskRequest, fleet: GeneratedFleet) -> dict[str, list[str]]:
    """The rules, written independently of the Cypher: agent id -> reasons (empty = ok)."""
    forbids = {**BUILTIN_POLICIES, **{p.policy_id: p.forbids for p in fleet.policies}}
    organ_policies = {o.organ_id: o.governed_by_policies for o in fleet.organs}
    needs = set(task.requirements)
    out: dict[str, list[str]] = {}
    for agent in fleet.agents:
        why: list[str] = []
        if task.organ_id is not None and agent.organ_id != task.organ_id:
            why.append(f"not in organ {task.organ_id}")
        why += [f"missing skill {s}" for s in task.required_skills if s not in agent.skills]
        why += [f"missing model {m}" for m in task.required_models if m not in agent.models]
        has = agent.resources.num_gpus
        if has < task.min_gpus:
            why.append(
                "no GPU" if has == 0 else f"needs {_gpus(task.min_gpus)} GPUs, has {_gpus(has)}"
            )
        for p in sorted(agent.policies):
            why += [f"policy {p} forbids {f}" for f in forbids[p] if f in needs]
        for p in sorted(organ_policies[agent.organ_id]):
            why += [
                f"policy {p} forbids {f} (through organ {agent.organ_id})"
                for f in forbids[p]
                if f in needs
            ]
        out[agent.agent_id] = why
    return out


def oracle_summary(
    task: TaskRequest, reasons: dict[str, list[str]], explained: set[str]
) -> dict[str, int]:
    """What a refusal's summary must say of the agents it does not explain: each reason once
    per agent (GPU shortfalls summed as 'fewer than N GPUs'; qualified ones are not live)."""
    counts: Counter[str] = Counter()
    for agent_id, why in reasons.items():
        if agent_id in explained:
            continue
        short = [r for r in why if r == "no GPU" or r.startswith("needs ")]
        counts.update(r for r in why if r not in short)
        if short:
            counts[f"fewer than {_gpus(task.min_gpus)} GPUs"] += 1
        if not why:
            counts[NOT_LIVE] += 1
    return dict(counts)


@contextmanager
def fresh_graph(server_uri: str, fleet: GeneratedFleet) -> Iterator[FalkorDBGraphClient]:
    client = FalkorDBGraphClient(f"{server_uri}/prop_{uuid.uuid4().hex[:12]}")
    try:
        migrate_graph(client)
        load_fleet(client, fleet)
        yield client
    finally:
        client.delete_graph()
        client.close()


@settings(max_examples=30, deadline=None)
@given(world=worlds(), task=tasks, limit=st.sampled_from([2, 50]), page=st.sampled_from([1, 3, 32]))
def test_routing_obeys_every_rule(
    falkordb_server: str, world: World, task: TaskRequest, limit: int, page: int
) -> None:
    expected = oracle_reasons(task, world.fleet)
    qualified = sorted(a for a, why in expected.items() if not why)
    with fresh_graph(falkordb_server, world.fleet) as graph:
        rows = graph.run("route_candidates", **task.route_params(), limit=1000)
        assert sorted(c.agent_id for c in candidates_from_rows(rows)) == qualified
        first = graph.run("route_candidates", **task.route_params(), limit=page)
        assert len(first) == min(page, len(qualified))
        assert {r["agent_id"] for r in first} <= set(qualified)

        explained = {
            r["agent_id"]: r["reasons"] for r in graph.run("route_explain", **task.route_params())
        }
        assert explained == expected

        live = {a: LiveInstance(a, str(uuid.uuid4()), a, "prop") for a in world.live}
        router = Router(
            graph, StaticLive(live), namespace="prop", refusal_explained=limit, first_page=page
        )
        live_qualified = [a for a in qualified if a in world.live]
        if live_qualified:
            decision = router.route(task)
            assert decision.agent_id in live_qualified
            if len(qualified) < page:  # the first page was every candidate
                assert decision.agent_id == live_qualified[0]  # all idle: the lowest id
            assert expected[decision.agent_id] == []
            assert decision.instance_id == live[decision.agent_id].instance_id
        else:
            try:
                router.route(task)
            except NoQualifiedAgent as err:
                # the closest agents are explained, the summary counts exactly the rest
                assert set(err.reasons) <= {a.agent_id for a in world.fleet.agents}
                assert len(err.reasons) <= limit
                assert all(err.reasons.values()), err.reasons
                for agent_id, why in err.reasons.items():
                    assert why == (expected[agent_id] or [NOT_LIVE])
                if limit >= len(world.fleet.agents):
                    assert set(qualified) <= set(err.reasons), "qualified ones are the closest"
                assert err.summary == oracle_summary(task, expected, set(err.reasons))
            else:
                raise AssertionError("routed although no qualified agent is live")
