"""The pure planner: each rule by example, then properties over random fleets."""

from __future__ import annotations

import json
import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from seedcore_thin import planner
from seedcore_thin.planner import (
    RULE_BACKOFF,
    RULE_EMPTY_GRAPH,
    RULE_GRAPH_UNREACHABLE,
    RULE_MASS_REMOVAL,
    RULE_UNMANAGED_NAME,
    Actual,
    Desired,
    InvalidEntry,
    Plan,
    plan,
)

NS = "ns"


def want(*ids: str, h: str = "h1") -> list[Desired]:
    return [Desired(i, NS, h) for i in ids]


def have(
    *ids: str, h: str | None = "h1", managed: bool = True, state: str = "alive"
) -> list[Actual]:
    return [Actual(i, NS, h, managed, state) for i in ids]


def ids(items: object) -> list[str]:
    return [x.agent_id for x in items]  # type: ignore[attr-defined]


def test_missing_agents_are_created_and_matching_ones_in_sync() -> None:
    p = plan(want("a", "b", "c"), have("a"))
    assert ids(p.create) == ["b", "c"]
    assert ids(p.in_sync) == ["a"]
    assert p.has_changes


def test_changed_hash_is_replaced_with_old_and_new_hash() -> None:
    p = plan(want("a", h="new"), have("a", h="old"))
    assert ids(p.replace) == ["a"]
    assert (p.replace[0].spec_hash, p.replace[0].old_spec_hash) == ("new", "old")


def test_managed_actor_not_in_graph_is_removed_unmanaged_left_alone() -> None:
    p = plan(want("a", "b", "c"), have("a", "b", "c", "gone") + have("foreign", managed=False))
    assert ids(p.remove) == ["gone"]
    assert p.archive == ()


def test_strict_archives_unmanaged_actor() -> None:
    p = plan(want("a", "b"), have("a", "b") + have("foreign", managed=False), strict=True)
    assert ids(p.archive) == ["foreign"]


def test_unmanaged_actor_holding_a_desired_name() -> None:
    loose = plan(want("a"), have("a", managed=False))
    assert loose.create == () and loose.held_back[0].rule == RULE_UNMANAGED_NAME
    strict = plan(want("a", "b"), have("a", managed=False) + have("b"), strict=True)
    assert ids(strict.archive) == ["a"] and ids(strict.create) == ["a"]
    assert strict.actions[0].kind == "archive"  # archive frees the name before the create


def test_graph_unreachable_removes_nothing_even_when_allowed() -> None:
    p = plan([], have("a", "b"), graph_reachable=False, allow_mass_removal=True, strict=True)
    assert p.remove == () and p.archive == ()
    assert {h.rule for h in p.held_back} == {RULE_GRAPH_UNREACHABLE}
    assert not p.has_changes


def test_empty_graph_holds_back_unless_allowed() -> None:
    p = plan([], have("a"))
    assert p.remove == () and p.held_back[0].rule == RULE_EMPTY_GRAPH
    assert ids(plan([], have("a"), allow_mass_removal=True).remove) == ["a"]


def test_mass_removal_share() -> None:
    actual = have("a", "b", "c", "d")
    assert ids(plan(want("a", "b"), actual).remove) == ["c", "d"]  # 2 of 4 = 50 %: allowed
    p = plan(want("a"), actual)  # 3 of 4 > 50 %
    assert p.remove == () and {h.rule for h in p.held_back} == {RULE_MASS_REMOVAL}
    assert ids(plan(want("a"), actual, mass_removal_share=0.8).remove) == ["b", "c", "d"]


def test_invalid_specs_keep_their_actors() -> None:
    bad = [InvalidEntry("b", "num_cpus", "must be >= 0")]
    p = plan(want("a"), have("a", "b"), invalid=bad)
    assert p.remove == () and p.invalid[0].reason == "must be >= 0"


def test_pending_actor_is_reported_not_recreated() -> None:
    p = plan(want("gpu"), [Actual("gpu", NS, None, True, "pending", "needs GPU 1, cluster has 0")])
    assert p.create == () and p.replace == ()
    assert p.pending[0].reason == "needs GPU 1, cluster has 0"


def test_backoff_holds_create_with_reason() -> None:
    p = plan(want("a"), [], backoff={(NS, "a"): "failed 2 times; retry after 4 s"})
    assert p.create == () and p.held_back[0].rule == RULE_BACKOFF


def test_reserved_and_duplicate_ids_are_invalid() -> None:
    p = plan([*want("seedcore-heartbeat-relay"), *want("a"), *want("a")], [])
    assert ids(p.create) == ["a"]
    assert sorted(i.reason for i in p.invalid) == ["duplicate agent id", "name is reserved"]


def test_namespaces_are_part_of_the_key() -> None:
    p = plan(
        [Desired("a", "x", "h")],
        [Actual("a", "y", "h", True), Actual("b", "x", "h", True)],
        allow_mass_removal=True,
    )
    assert [(a.namespace, a.agent_id) for a in p.create] == [("x", "a")]
    assert [(a.namespace, a.agent_id) for a in p.remove] == [("x", "b"), ("y", "a")]


def test_to_json_has_the_cli_keys() -> None:
    p = plan(want("a", "b"), have("b", h="old") + have("c"), invalid=[InvalidEntry("z", "id", "x")])
    doc = json.loads(json.dumps(p.to_json()))
    for key in ("create", "replace", "remove", "archive", "in_sync", "held_back", "invalid"):
        assert isinstance(doc[key], list)
        assert all("agent_id" in item for item in doc[key])
    assert doc["create"][0]["agent_id"] == "a" and doc["replace"][0]["reason"] == "spec changed"


def test_every_safety_rule_has_its_line_in_the_docs() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "architecture.md").read_text()
    section = doc.split("\n## Safety rules\n", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^- `(\w+)`: ", section, re.MULTILINE)
    rules = [value for name, value in vars(planner).items() if name.startswith("RULE_")]
    assert sorted(listed) == sorted(rules)


# ---------------------------------------------------------------- properties

agent_ids = st.sampled_from([f"a{i}" for i in range(12)])
namespaces = st.sampled_from(["n1", "n2"])
hashes = st.sampled_from(["h1", "h2"])
desired_st = st.lists(st.builds(Desired, agent_ids, namespaces, hashes), max_size=12)
actual_st = st.lists(
    st.builds(
        Actual,
        agent_ids,
        namespaces,
        st.one_of(st.none(), hashes),
        st.booleans(),
        st.sampled_from(["alive", "pending"]),
    ),
    max_size=12,
    unique_by=lambda a: (a.namespace, a.agent_id),
)


def _simulate(p: Plan, actual: list[Actual]) -> dict[tuple[str, str], Actual]:
    state = {(a.namespace, a.agent_id): a for a in actual}
    for a in p.actions:
        if a.kind in ("remove", "archive"):
            state.pop(a.key, None)
        else:
            state[a.key] = Actual(a.agent_id, a.namespace, a.spec_hash, True)
    return state


@settings(max_examples=300, deadline=None)
@given(desired_st, actual_st, st.booleans(), st.booleans(), st.booleans())
def test_plan_properties(
    desired: list[Desired], actual: list[Actual], strict: bool, reachable: bool, allow: bool
) -> None:
    p = plan(desired, actual, strict=strict, graph_reachable=reachable, allow_mass_removal=allow)
    wanted = {(d.namespace, d.agent_id) for d in desired}
    managed = {(a.namespace, a.agent_id) for a in actual if a.managed}
    killed = [a.key for a in p.remove + p.archive]
    # every desired agent lands in exactly one bucket
    buckets = [a.key for a in p.create + p.replace] + [
        (e.namespace, e.agent_id) for e in p.in_sync + p.pending
    ]
    held = [h.action.key for h in p.held_back if h.action.kind in ("create", "replace")]
    held += [h.action.key for h in p.held_back if h.rule == RULE_UNMANAGED_NAME]
    assert sorted(buckets + held) == sorted(wanted)
    # removals only touch managed actors outside the graph; archives only in strict mode
    assert all(k in managed and k not in wanted for k in (a.key for a in p.remove))
    assert strict or p.archive == ()
    if not reachable:
        assert killed == []
    if not allow and killed:
        assert len(p.remove) <= 0.5 * max(len(managed), 1) and wanted
    # applying the plan converges when no safety rule fired
    if reachable and not p.held_back:
        after = _simulate(p, actual)
        for key in wanted:
            assert after[key].managed
        assert {k for k, a in after.items() if a.managed} == wanted


def test_plan_10k_is_fast() -> None:
    import time

    desired = [Desired(f"a{i}", NS, "h2" if i % 10 == 0 else "h1") for i in range(10_000)]
    actual = [Actual(f"a{i}", NS, "h1", True) for i in range(500, 10_500)]
    start = time.perf_counter()
    p = plan(desired, actual, allow_mass_removal=True)
    elapsed = time.perf_counter() - start
    assert (len(p.create), len(p.remove)) == (500, 500)
    assert elapsed < 1.0  # target 0.2 s; generous for a shared 2-core box
