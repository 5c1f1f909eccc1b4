"""The original design's usage as written: specs passed to ``MockGraphClient``, attached to the
manager, reconciled onto real Ray, and routed by the graph's Cypher, guardrail included.

The only departure from shared/original-design.txt is the resources: the design asks for
2 CPUs and a GPU, the test Ray has 4 CPUs and no GPU.
"""

from __future__ import annotations

import pytest

from seedcore_thin.config import Settings
from seedcore_thin.errors import NoQualifiedAgent
from seedcore_thin.manager import Tier0Manager
from seedcore_thin.specs import AgentSpec
from tests.fixtures_graph import MockGraph

pytestmark = pytest.mark.ray

BLOCKED = "policy no_external_egress forbids external_network"


def test_basic_setup_then_graph_aware_routing_with_the_builtin_guardrail(
    ray_namespace: str, mock_graph: MockGraph
) -> None:
    ns = ray_namespace
    agent_specs = [
        AgentSpec(
            agent_id="vision_agent_1",
            organ_id="vision_organ",
            skills=["image_processing", "object_detection"],
            models=["yolo_v8", "resnet50"],
            resources={"num_cpus": 0.1},
            metadata={"policies": "privacy_policy,no_external_egress"},  # no Policy node written
        ),
        AgentSpec(
            agent_id="vision_agent_2",
            organ_id="vision_organ",
            skills=["image_processing", "object_detection"],
            models=["yolo_v8"],
            services=["camera_service", "storage_service"],
            resources={"num_cpus": 0.1},
        ),
    ]
    manager = Tier0Manager(Settings(namespace=ns), namespace=ns)
    manager.attach_graph(mock_graph(agent_specs))
    try:
        report = manager.reconcile_from_graph()
        assert sorted(o.outcome for o in report.outcomes) == ["succeeded", "succeeded"]
        assert manager.list_agents() == ["vision_agent_1", "vision_agent_2"]

        task_data = {
            "task_type": "image_analysis",
            "required_skills": ["image_processing", "object_detection"],
            "required_models": ["yolo_v8"],
            "organ_id": "vision_organ",
            "data": {"image_path": "/path/to/image.jpg"},
        }
        result = manager.execute_task_on_graph_best(task_data)
        assert result.decision.agent_id in {"vision_agent_1", "vision_agent_2"}
        assert result.result["result"] == {"image_path": "/path/to/image.jpg"}

        network = {**task_data, "requires_external_network": True}
        for _ in range(3):  # never the agent under no_external_egress, however often asked
            assert manager.execute_task_on_graph_best(network).decision.agent_id == "vision_agent_2"
        assert manager.explain_task(network) == {"vision_agent_1": [BLOCKED], "vision_agent_2": []}

        with pytest.raises(NoQualifiedAgent) as refused:
            manager.execute_task_on_graph_best({**network, "required_models": ["resnet50"]})
        assert refused.value.reasons["vision_agent_1"] == [BLOCKED]
    finally:
        manager.close()
