"""Agent classes the tests name as entrypoints (``tests.agents_for_tests:Name``).

They behave like users' code does on a bad day: raising in setup, raising in handle,
hanging, returning what JSON cannot carry. Ray workers import them by entrypoint.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

SETUP_CALLS: list[str] = []


class Counter:
    """Counts its setups (process-wide) and answers with its params and environment."""

    def setup(self, context: Any) -> None:
        SETUP_CALLS.append(context.agent_id)
        self.context = context
        self.setups = sum(1 for a in SETUP_CALLS if a == context.agent_id)

    def handle(self, task: Mapping[str, Any]) -> dict[str, Any]:
        data = task.get("data") or {}
        if data.get("raise"):
            raise RuntimeError(f"asked to fail: {data['raise']}")
        if data.get("sleep"):
            time.sleep(float(data["sleep"]))
        return {
            "setups": self.setups,
            "params": dict(self.context.params),
            "env": os.environ.get(str(data.get("env", "")), None),
            "pid": os.getpid(),
        }

    def health(self) -> dict[str, Any]:
        return {"setups": self.setups}


class AsyncCounter(Counter):
    """The same with an ``async def handle``."""

    async def handle(self, task: Mapping[str, Any]) -> dict[str, Any]:  # type: ignore[override]
        data = task.get("data") or {}
        if data.get("sleep"):
            await asyncio.sleep(float(data["sleep"]))
        return {"async": True, "setups": self.setups}


class FailingSetup:
    """setup raises: the agent must never be routed."""

    def setup(self, context: Any) -> None:
        raise RuntimeError("model weights not found: /models/missing.bin")

    def handle(self, task: Mapping[str, Any]) -> Any:  # pragma: no cover - never called
        return "should never run"


class SlowSetup(Counter):
    """A setup that takes ``params['seconds']``: the registry sees it starting meanwhile."""

    def setup(self, context: Any) -> None:
        time.sleep(float(context.params.get("seconds", 3)))
        super().setup(context)


class NotJson:
    def handle(self, task: Mapping[str, Any]) -> Any:
        return {"when": object()}


class Recorder:
    """Writes a line to ``params['log']`` on shutdown, after its in-flight tasks."""

    def setup(self, context: Any) -> None:
        self.log = str(context.params["log"])
        self.lock = threading.Lock()

    def handle(self, task: Mapping[str, Any]) -> str:
        time.sleep(float((task.get("data") or {}).get("sleep", 0)))
        with self.lock, open(self.log, "a") as f:
            f.write("handled\n")
        return "ok"

    def shutdown(self) -> None:
        with open(self.log, "a") as f:
            f.write("shutdown\n")
