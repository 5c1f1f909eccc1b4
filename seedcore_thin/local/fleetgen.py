"""Deterministic synthetic fleets for tests and benchmarks (1 to 100,000 agents).

``generate_fleet(n, seed=...)`` returns specs shaped like a real fleet: a handful of organs,
skills and models drawn from small pools, a few GPU agents, policies over some organs and
directly over some agents. ``load_fleet(client, fleet)`` writes it with the named commands
(``upsert_policy``, ``upsert_organ``, batched ``upsert_agents``; see
:func:`seedcore_thin.graph.upsert_specs`), so loading also exercises them. The same seed
always gives the same fleet.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from seedcore_thin.graph import GraphClient, upsert_specs
from seedcore_thin.specs import AgentSpec, OrganSpec, PolicySpec, Resources

CAPABILITIES = ("external_network", "pii_export", "cross_region_transfer", "gpu_burst")


@dataclass(frozen=True)
class GeneratedFleet:
    """A whole desired state: policies first, then organs, then agents."""

    policies: list[PolicySpec] = field(default_factory=list)
    organs: list[OrganSpec] = field(default_factory=list)
    agents: list[AgentSpec] = field(default_factory=list)


def generate_fleet(
    n_agents: int,
    *,
    seed: int = 0,
    n_organs: int = 8,
    n_skills: int = 24,
    n_models: int = 12,
    gpu_share: float = 0.05,
    direct_policy_share: float = 0.05,
    num_cpus: float = 0.1,
) -> GeneratedFleet:
    """A fleet of ``n_agents`` agents; ids are ``agent-00000``... so sorting is stable."""
    rng = random.Random(seed)
    skills = [f"skill-{i:02d}" for i in range(n_skills)]
    models = [f"model-{i:02d}" for i in range(n_models)]
    policies = [
        PolicySpec(policy_id="no_external_egress", kind="network", forbids=["external_network"]),
        PolicySpec(policy_id="pii_restricted", kind="data_classification", forbids=["pii_export"]),
        PolicySpec(policy_id="eu_residency", kind="region", forbids=["cross_region_transfer"]),
    ]
    organs = []
    for i in range(n_organs):
        governed = [p.policy_id for p in policies if rng.random() < 0.25]
        organs.append(
            OrganSpec(
                organ_id=f"organ-{i:02d}",
                provides_skills=rng.sample(skills, k=min(len(skills), 6)),
                uses_services=[f"service-{i % 3}"],
                governed_by_policies=governed,
            )
        )
    agents = []
    for i in range(n_agents):
        organ = organs[rng.randrange(n_organs)]
        direct = [rng.choice(policies).policy_id] if rng.random() < direct_policy_share else []
        agents.append(
            AgentSpec(
                agent_id=f"agent-{i:05d}",
                organ_id=organ.organ_id,
                name=f"Agent {i}",
                skills=rng.sample(organ.provides_skills, k=rng.randint(1, 3)),
                models=rng.sample(models, k=rng.randint(1, 2)),
                resources=Resources(
                    num_cpus=num_cpus,
                    num_gpus=1.0 if rng.random() < gpu_share else 0.0,
                    memory_mb=rng.choice([128, 256, 512]),
                ),
                policies=direct,
                max_concurrency=rng.choice([1, 2, 4]),
                metadata={"generated": True, "seed": seed},
            )
        )
    return GeneratedFleet(policies=policies, organs=organs, agents=agents)


def load_fleet(client: GraphClient, fleet: GeneratedFleet, *, batch_size: int = 1000) -> int:
    """Write the fleet through the named commands; returns the desired-state version."""
    return upsert_specs(client, fleet.agents, fleet.organs, fleet.policies, batch_size=batch_size)
