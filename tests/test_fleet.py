"""The picture of the fleet (``scripts/fleet.py``): states, the page, DOT, a real browser.

The scenario is the example fleet plus one invalid agent, on a real FalkorDB graph and a
real PostgreSQL registry: seven agents live (registered and beating), one starting
(registered, no beat), one whose create failed in the audit, one created but pending (no
GPU), one created whose instance never came, and one agent live that the graph does not
know. The browser test opens the page in Debian's chromium through playwright-core
(``scripts/screenshot_fleet.mjs``) and skips, saying why, where either is missing.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from seedcore_thin.audit import AuditStore
from seedcore_thin.cli import fleet as fleet_cli
from seedcore_thin.graph import AgentSpec, load_cypher_file, upsert_agent
from seedcore_thin.graph.falkordb import FalkorDBGraphClient
from seedcore_thin.queries import cypher_dir, project_root
from seedcore_thin.registry import InstanceRecord, Registry

NS = "fleet-test"
BROKEN = cypher_dir() / "fixtures" / "tests" / "fleet_broken_agent.cypher"
LIVE = [
    "yolo-detector-1",
    "yolo-detector-2",
    "resnet-classifier-1",
    "llm-summarizer-1",
    "web-researcher-1",
    "translator-1",
    "risk-scorer-1",
]
EXPECTED = {
    **dict.fromkeys(LIVE, "live"),
    "embedder-1": "starting",
    "llm-summarizer-2": "setup-failed",
    "vision-gpu-1": "pending",
    "ledger-analyst-1": "not-live",
    "ocr-broken-1": "invalid",
    **dict.fromkeys(["triage-1", "triage-2", "triage-3", "faq-1"], "not-live"),  # pooled
}
SETUP_ERROR = "setup failed: ImportError: No module named 'vllm'"
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = project_root() / "scripts" / "screenshot_fleet.mjs"


def build_scenario(registry: Registry) -> None:
    """Registry rows for the scenario in the module docstring (namespace ``NS``)."""
    epoch = registry.call("current_epoch")
    records = {
        agent: InstanceRecord(uuid.uuid4(), agent, epoch, agent, NS, "node-1", "10.0.0.7", 4100 + i)
        for i, agent in enumerate([*LIVE, "embedder-1", "retired-agent-9"])
    }
    for record in records.values():
        registry.register_instance(record)
    beating = [r.instance_id for a, r in records.items() if a != "embedder-1"]
    assert registry.beat_many(beating, epoch) == len(beating)

    audit = AuditStore(registry, holder="fleet-test")
    audit.acquire()
    created = ["llm-summarizer-2", "vision-gpu-1", "ledger-analyst-1"]
    plan = {"create": [{"agent_id": a, "namespace": NS, "spec_hash": "h"} for a in created]}
    run = audit.begin_run(plan, scope=None, strict=False)
    step = {"kind": "create", "namespace": NS, "duration_ms": 5}
    audit.record(run, agent_id="llm-summarizer-2", outcome="failed", error=SETUP_ERROR, **step)
    audit.record(run, agent_id="vision-gpu-1", outcome="pending", **step)
    audit.record(run, agent_id="ledger-analyst-1", outcome="succeeded", **step)
    audit.finish_run(run)


@pytest.fixture
def scenario_graph(fleet_graph: FalkorDBGraphClient) -> FalkorDBGraphClient:
    load_cypher_file(fleet_graph, BROKEN)
    return fleet_graph


@pytest.fixture
def scenario(scenario_graph: FalkorDBGraphClient, registry: Registry) -> fleet_cli.Fleet:
    build_scenario(registry)
    return fleet_cli.read_fleet(scenario_graph, registry, namespace=NS)


def test_every_agent_gets_its_state(scenario: fleet_cli.Fleet) -> None:
    assert {a.agent_id: a.state for a in scenario.agents} == EXPECTED
    by_id = {a.agent_id: a for a in scenario.agents}
    assert by_id["llm-summarizer-2"].detail == SETUP_ERROR
    assert by_id["ocr-broken-1"].organ_id == "vision"
    assert "num_cpus" in by_id["ocr-broken-1"].detail
    assert by_id["yolo-detector-1"].instance is not None
    assert by_id["yolo-detector-1"].instance["last_heartbeat"]
    assert by_id["embedder-1"].instance is not None  # the starting one: its registration
    assert by_id["ledger-analyst-1"].detail.endswith("last step create succeeded")
    assert scenario.unmanaged_live == ["retired-agent-9"]
    assert scenario.registry == "reachable"
    assert [p["policy_id"] for p in scenario.policies] == [
        "eu_data_residency",
        "no_external_egress",
        "pii_restricted",
    ]


def test_a_later_plan_that_lists_the_agent_pending_makes_it_pending(
    fleet_graph: FalkorDBGraphClient, registry: Registry
) -> None:
    audit = AuditStore(registry, holder="fleet-test")
    audit.acquire()
    why = "needs 1 GPU, the cluster has 0"
    run = audit.begin_run(
        {"pending": [{"agent_id": "vision-gpu-1", "namespace": NS, "reason": why}]},
        scope=None,
        strict=False,
    )
    audit.finish_run(run)
    fleet = fleet_cli.read_fleet(fleet_graph, registry, namespace=NS)
    gpu = next(a for a in fleet.agents if a.agent_id == "vision-gpu-1")
    assert (gpu.state, gpu.detail) == ("pending", why)
    assert {a.state for a in fleet.agents if a.agent_id != "vision-gpu-1"} == {"not-live"}


def test_registry_down_still_draws_the_graph(scenario_graph: FalkorDBGraphClient) -> None:
    with Registry("host=127.0.0.1 port=1 dbname=none connect_timeout=1", timeout=0.5) as down:
        fleet = fleet_cli.read_fleet(scenario_graph, down, namespace=NS)
    states = {a.agent_id: a.state for a in fleet.agents}
    assert states.pop("ocr-broken-1") == "invalid"
    assert set(states.values()) == {"unknown"}
    assert fleet.registry.startswith("down")
    html = fleet_cli.render_html(fleet)
    assert html.count('data-state="unknown"') == len(states)
    assert "unknown (registry down)" in html


def _data_block(html: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="fleet-data">(.*?)</script>', html, re.S)
    assert found, "no data block"
    return dict(json.loads(found.group(1)))


def test_page_is_self_contained_and_escapes_what_the_graph_says(
    scenario_graph: FalkorDBGraphClient, registry: Registry
) -> None:
    hostile = "</script><script>alert('x')</script>"
    upsert_agent(
        scenario_graph,
        AgentSpec(agent_id="quoted-agent", organ_id="language", name=hostile, skills=["a&b"]),
    )
    fleet = fleet_cli.read_fleet(scenario_graph, registry, namespace=NS)
    html = fleet_cli.render_html(fleet)
    assert hostile not in html
    assert html.count("<script") == 2  # the data block and the page's own script
    assert _data_block(html)["agents"]["quoted-agent"]["name"] == hostile
    assert not re.search(r"\b(src|href)\s*=|<link|@import|url\(", html, re.I)
    assert re.findall(r"https?://[^\s\"'<]+", html) == ["http://www.w3.org/2000/svg"]


def test_dot_has_every_node_and_edge(scenario: fleet_cli.Fleet) -> None:
    dot = fleet_cli.render_dot(scenario)
    assert dot.count("subgraph ") == 4  # one per organ
    assert dot.count('[label="MEMBER_OF"]') == len(EXPECTED)
    # finance -> two policies, translator-1 -> one
    assert dot.count('label="GOVERNED_BY"') == 3
    for agent, state in EXPECTED.items():
        line = next(x for x in dot.splitlines() if x.strip().startswith(f'"agent:{agent}" ['))
        assert f"\\n{fleet_cli.STATES[state][0]}\\n" in line
    assert 'forbids: pii_export, external_network"' in dot


def test_cli_writes_the_page_and_the_dot(
    scenario_graph: FalkorDBGraphClient,
    graph_uri: str,
    pg_dsn: str,
    registry: Registry,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    build_scenario(registry)
    html, dot = tmp_path / "out" / "fleet.html", tmp_path / "fleet.dot"
    args = ["--graph-uri", graph_uri, "--pg-dsn", pg_dsn, "--namespace", NS]
    assert fleet_cli.main([*args, "--html", str(html), "--dot", str(dot)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {html}" in out and f"wrote {dot}" in out
    assert "16 agents in 4 organs (7 live, 1 starting, 1 pending, 1 setup failed" in out
    page = html.read_text(encoding="utf-8")
    assert set(_data_block(page)["agents"]) == set(EXPECTED)
    assert dot.read_text(encoding="utf-8").startswith("// seedcore fleet")


def test_cli_fails_cleanly_when_the_graph_is_unreachable(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = fleet_cli.main(
        ["--graph-uri", "falkordb://127.0.0.1:1/none", "--html", str(tmp_path / "x.html")]
    )
    assert code == 1
    assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()


def _browser_missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (Debian's chromium: `make install` installs it as root)"
    if shutil.which("node") is None:
        return "node is missing"
    if not (project_root() / "node_modules" / "playwright-core").is_dir():
        return "playwright-core is missing (run `npm ci`)"
    return None


def open_in_browser(page: Path, *args: str) -> dict[str, Any]:
    """Run scripts/screenshot_fleet.mjs on the page; its JSON report."""
    done = subprocess.run(
        ["node", str(SCREENSHOT), str(page), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=project_root(),
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.slow
def test_page_in_a_real_headless_browser(scenario: fleet_cli.Fleet, tmp_path: Path) -> None:
    missing = _browser_missing()
    if missing:
        pytest.skip(f"no headless browser: {missing}")
    page, png = tmp_path / "fleet.html", tmp_path / "fleet.png"
    fleet_cli.write_outputs(scenario, str(page), None)
    report = open_in_browser(
        page, "--png", str(png), "--inspect", "yolo-detector-1", "--inspect", "ocr-broken-1"
    )

    assert report["consoleErrors"] == [] and report["pageErrors"] == []
    assert report["requests"] == [], "the page must not request anything"
    assert {a["id"]: a["state"] for a in report["agents"]} == EXPECTED
    assert {a["id"]: a["organ"] for a in report["agents"]}["ocr-broken-1"] == "vision"
    assert sorted(report["organs"]) == ["finance", "language", "support", "vision"]
    assert len(report["policies"]) == 3
    kinds = [e["kind"] for e in report["edges"]]
    assert (kinds.count("MEMBER_OF"), kinds.count("GOVERNED_BY")) == (len(EXPECTED), 3)
    assert report["legend"]["live"] == 7 and report["legend"]["invalid"] == 1

    hover, click, hover_bad, click_bad = report["panels"]
    assert hover["agent"] == hover["heading"] == "yolo-detector-1"
    assert hover["state"] == "live"
    assert "last heartbeat" in hover["text"] and "instance" in hover["text"]
    assert json.loads(hover["spec"])["skills"] == ["object_detection"]
    assert click["agent"] == "yolo-detector-1"  # clicked: it stays after the mouse leaves
    assert hover_bad["state"] == "invalid" and "num_cpus" in hover_bad["text"]
    assert click_bad["agent"] == "ocr-broken-1"

    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 20_000
