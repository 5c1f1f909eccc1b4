"""A real two-node Ray cluster on loopback: GPU agents land on the node that declares a GPU.

The driver runs in a subprocess: this pytest process already holds the session's local Ray,
and a process can join only one cluster.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures_ray import LoopbackCluster, cluster_env

pytestmark = [pytest.mark.ray, pytest.mark.slow]

DRIVER = """
import json, sys, ray
from seedcore_thin import actors
from seedcore_thin.graph import MockGraphClient
from seedcore_thin.reconciler import Reconciler
from seedcore_thin.specs import AgentSpec

ray.init(address=sys.argv[1], log_to_driver=False,
         _node_ip_address=sys.argv[1].rpartition(":")[0])
ns = "two-node"
def spec(agent_id, gpus):
    return AgentSpec(agent_id=agent_id, organ_id="vision",
                     resources={"num_cpus": 0.1, "num_gpus": gpus})
graph = MockGraphClient([spec("gpu-agent", 1.0), spec("gpu-agent-2", 1.0), spec("cpu-agent", 0)],
                        uri=sys.argv[2])
rec = Reconciler(graph, namespace=ns, ready_timeout_s=8)
report = rec.reconcile()
placed = {f.name: f.info["node_id"]
          for f in actors.describe_all(actors.named_actors([ns]), timeout_s=5) if f.info}
print(json.dumps({
    "outcomes": {o.action.agent_id: [o.outcome, o.detail.get("pending_reason")]
                 for o in report.outcomes},
    "gpu_nodes": [n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("GPU")],
    "placed": placed,
    "again": rec.plan().summary(),
}))
for _, name in actors.named_actors([ns]):
    actors.kill(name, ns)
graph.close()
"""


def test_gpu_agents_land_on_the_gpu_node(
    two_node_cluster: LoopbackCluster, falkordb_server: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, two_node_cluster.address, falkordb_server],
        env=cluster_env(),
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    outcomes = result["outcomes"]
    assert outcomes["cpu-agent"][0] == "succeeded"
    # one GPU in the cluster: one GPU agent runs on the GPU node, the other is pending
    # (with the reason) and apply did not hang on it
    states = sorted((outcomes[a][0], a) for a in ("gpu-agent", "gpu-agent-2"))
    (_, waiting), (_, placed) = states
    assert [s for s, _ in states] == ["pending", "succeeded"], outcomes
    assert "not placed" in outcomes[waiting][1]
    (gpu_node,) = result["gpu_nodes"]
    assert result["placed"][placed] == gpu_node
    assert result["again"]["pending"] == 1 and result["again"]["create"] == 0
