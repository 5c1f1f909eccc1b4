"""The agent host (seedcore_thin.agent) against real user-style classes, no Ray needed.

The host is plain asyncio; the Ray actors that wrap it are tested in test_agents_ray.py.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from seedcore_thin.agent import AgentContext, HostedAgent, load_entrypoint


def _host(entrypoint: str | None, **params: object) -> HostedAgent:
    ctx = AgentContext(
        agent_id=f"a-{uuid.uuid4().hex[:6]}",
        organ_id="o",
        namespace="ns",
        instance_id=str(uuid.uuid4()),
        params=dict(params),
    )
    return HostedAgent(ctx, entrypoint, spec_hash="h", max_in_flight=4)


def _run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_builtin_echo_when_no_entrypoint() -> None:
    async def go() -> None:
        host = _host(None)
        info = await host.start()
        assert info["state"] == "alive" and info["entrypoint"] == "builtin echo agent"
        out = await host.handle({"task_type": "t", "data": {"x": 1}})
        assert out["status"] == "completed" and out["result"] == {"x": 1}

    _run(go())


def test_setup_runs_once_and_handle_sees_params() -> None:
    async def go() -> None:
        host = _host("tests.agents_for_tests:Counter", temperature=0.2)
        await host.start()
        await host.start()  # a second start is a no-op, not a second setup
        out = await host.handle({"task_type": "t", "data": {}})
        assert out["result"]["setups"] == 1
        assert out["result"]["params"] == {"temperature": 0.2}
        health = await host.health()
        assert health["health"] == {"setups": 1} and health["tasks_done"] == 1

    _run(go())


def test_async_handle() -> None:
    async def go() -> None:
        host = _host("tests.agents_for_tests:AsyncCounter")
        await host.start()
        results = await asyncio.gather(*(host.handle({"data": {"sleep": 0.05}}) for _ in range(4)))
        assert all(r["result"]["async"] for r in results)

    _run(go())


@pytest.mark.parametrize(
    ("entrypoint", "error_type", "fragment"),
    [
        ("tests.agents_for_tests:FailingSetup", "RuntimeError", "model weights not found"),
        ("tests.no_such_module:Agent", "ModuleNotFoundError", "tests.no_such_module"),
        ("tests.agents_for_tests:Missing", "AttributeError", "Missing"),
        ("not an entrypoint", "ValueError", "package.module:ClassName"),
    ],
)
def test_failed_start_is_reported_and_never_serves(
    entrypoint: str, error_type: str, fragment: str
) -> None:
    async def go() -> None:
        host = _host(entrypoint)
        info = await host.start()
        assert info["state"] == "failed"
        assert info["error"]["type"] == error_type and fragment in info["error"]["message"]
        out = await host.handle({"data": {}})
        assert out["status"] == "failed" and out["error"]["type"] == "AgentNotReady"
        assert fragment in out["error"]["message"]

    _run(go())


def test_raising_handle_is_a_failed_result_and_the_agent_keeps_serving() -> None:
    async def go() -> None:
        host = _host("tests.agents_for_tests:Counter")
        await host.start()
        bad = await host.handle({"data": {"raise": "boom"}})
        assert bad["status"] == "failed"
        assert bad["error"] == {"type": "RuntimeError", "message": "asked to fail: boom"}
        good = await host.handle({"data": {}})
        assert good["status"] == "completed" and host.state == "alive"
        assert (host.tasks_done, host.tasks_failed) == (1, 1)

    _run(go())


def test_result_that_is_not_json_is_a_failed_result() -> None:
    async def go() -> None:
        host = _host("tests.agents_for_tests:NotJson")
        await host.start()
        out = await host.handle({"data": {}})
        assert out["status"] == "failed" and out["error"]["type"] == "TypeError"

    _run(go())


def test_shutdown_waits_for_in_flight_tasks(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"

    async def go() -> None:
        host = _host("tests.agents_for_tests:Recorder", log=str(log))
        await host.start()
        task = asyncio.create_task(host.handle({"data": {"sleep": 0.3}}))
        await asyncio.sleep(0.05)
        info = await host.stop(grace_s=5)
        assert info["state"] == "dead"
        assert (await task)["status"] == "completed"
        late = await host.handle({"data": {}})
        assert late["error"]["type"] == "AgentNotReady"

    _run(go())
    assert log.read_text().splitlines() == ["handled", "shutdown"]


def test_grace_period_bounds_the_drain(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"

    async def go() -> None:
        host = _host("tests.agents_for_tests:Recorder", log=str(log))
        await host.start()
        slow = asyncio.create_task(host.handle({"data": {"sleep": 2}}))
        await asyncio.sleep(0.05)
        loop = asyncio.get_running_loop()
        began = loop.time()
        await host.stop(grace_s=0.2)
        assert loop.time() - began < 1.5
        slow.cancel()

    _run(go())
    assert log.read_text().splitlines()[0] == "shutdown"


def test_load_entrypoint_rejects_a_class_without_handle() -> None:
    with pytest.raises(TypeError, match="handle"):
        load_entrypoint("seedcore_thin.agent:AgentContext")


def test_concurrent_starts_share_one_setup() -> None:
    async def go() -> None:
        host = _host("tests.agents_for_tests:Counter")
        await asyncio.gather(host.start(), host.start(), host.start())
        out = await host.handle({"data": {}})
        assert out["result"]["setups"] == 1

    _run(go())
