"""The smallest useful agent: answers at once with a small dict (benchmarks' user agent).

Entrypoint ``seedcore_thin.examples.trivial:Trivial``. It does almost nothing on purpose, so
a benchmark that routes tasks to it measures the path to the agent, not the agent:
``scripts/bench_agents.py`` (against a plain Ray actor) and ``scripts/bench_vs_serve.py``
(against a Ray Serve deployment) run this same class on every side.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class Trivial:
    """``handle`` returns who answered, a running count and the task's ``data`` back."""

    def setup(self, context: Any) -> None:
        self.agent_id = str(context.agent_id)
        self.count = 0

    def handle(self, task: Mapping[str, Any]) -> dict[str, Any]:
        self.count += 1
        return {"agent": self.agent_id, "n": self.count, "data": task.get("data")}
