"""The embedded FalkorDB (real redis-server + module) and choosing a backend by URI."""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from seedcore_thin.errors import ConfigError, GraphUnavailable
from seedcore_thin.graph import (
    GraphClient,
    MockGraphClient,
    connect_graph,
    load_fixture,
    remove_agent,
    upsert_agent,
)
from seedcore_thin.graph.falkordb import FalkorDBGraphClient
from seedcore_thin.graph.migrations import migrate_graph
from seedcore_thin.local import falkordb as embedded
from seedcore_thin.local import read_int
from seedcore_thin.local.falkordb import (
    PORT_ENV,
    falkordb_status,
    start_falkordb,
    stop_falkordb,
)
from seedcore_thin.specs import AgentSpec


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _listening_sockets(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket in LISTEN state that process ``pid`` owns."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # 0A = LISTEN
                address, port = local.split(":")
                if len(address) == 8:
                    octets = [str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0)]
                    host = ".".join(octets)
                else:
                    host = address
                found.add((host, int(port, 16)))
    return found


@pytest.fixture
def own_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private embedded server home on a free port, stopped after the test."""
    monkeypatch.setenv(PORT_ENV, str(_free_port()))
    home = tmp_path / "graph"
    yield home
    stop_falkordb(home)


def test_start_is_idempotent_loopback_only_and_without_bolt(own_home: Path) -> None:
    assert falkordb_status(own_home) is None
    uri = start_falkordb(own_home)
    port = int(os.environ[PORT_ENV])
    assert uri == f"falkordb://127.0.0.1:{port}"
    assert start_falkordb(own_home) == uri, "a second start finds the running server"
    assert falkordb_status(own_home) == uri
    pid = int((own_home / "falkordb.pid").read_text())
    assert _listening_sockets(pid) == {("127.0.0.1", port)}, "one loopback port, no Bolt"


def test_data_persists_across_restart(own_home: Path) -> None:
    uri = start_falkordb(own_home)
    with FalkorDBGraphClient(f"{uri}/fleet") as client:
        migrate_graph(client)
        load_fixture(client)
        before = client.list_agent_specs()
    assert stop_falkordb(own_home) is True
    assert falkordb_status(own_home) is None
    assert stop_falkordb(own_home) is False, "stopping twice is harmless"
    with connect_graph(f"falkordb+embedded://{own_home}") as client:  # restarts on demand
        assert client.list_agent_specs() == before
        assert client.version() == 1
        assert migrate_graph(client) == []


def test_embedded_uri_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PORT_ENV, str(_free_port()))
    monkeypatch.chdir(tmp_path)
    client = connect_graph("falkordb+embedded://.seedcore/graph?graph=demo")
    try:
        assert isinstance(client, FalkorDBGraphClient)
        assert client.graph_name == "demo"
        assert (tmp_path / ".seedcore" / "graph" / "falkordb.pid").is_file()
        assert isinstance(client, GraphClient)
    finally:
        client.close()
        stop_falkordb(tmp_path / ".seedcore" / "graph")


def test_default_uri_comes_from_the_environment(
    falkordb_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEEDCORE_GRAPH_URI", f"{falkordb_server}/test_env_default")
    with connect_graph() as client:
        assert isinstance(client, FalkorDBGraphClient)
        assert client.graph_name == "test_env_default"
        assert client.version() == 0


def test_unreachable_graph_is_graph_unavailable() -> None:
    with pytest.raises(GraphUnavailable, match="unreachable"):
        connect_graph(f"falkordb://127.0.0.1:{_free_port()}/fleet")
    with pytest.raises(GraphUnavailable):
        connect_graph(f"neo4j://127.0.0.1:{_free_port()}")


def test_unknown_scheme_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unsupported graph URI scheme"):
        connect_graph("mysql://localhost/fleet")
    with pytest.raises(ConfigError, match="needs a data directory"):
        connect_graph("falkordb+embedded://")


def test_mock_client_is_a_private_graph_answering_every_query(falkordb_server: str) -> None:
    specs = [
        AgentSpec(agent_id="b", organ_id="o1", models=["m"]),
        AgentSpec(agent_id="a", organ_id="o2", models=["m", "n"]),
    ]
    client = MockGraphClient(specs, uri=f"{falkordb_server}/ignored")
    assert isinstance(client, GraphClient) and isinstance(client, FalkorDBGraphClient)
    assert client.graph_name.startswith("mock_")
    assert [s.agent_id for s in client.list_agent_specs()] == ["a", "b"]
    assert client.read_agent_specs().invalid == []
    assert [o.organ_id for o in client.list_organ_specs()] == ["o1", "o2"]
    assert client.version() == 1
    assert [r["agent_id"] for r in client.run("agents_using_model", model_name="n")] == ["a"]
    assert client.run("desired_state_version") == [{"version": 1}]
    assert upsert_agent(client, AgentSpec(agent_id="c", organ_id="o1")) == 2
    assert [r["agent_id"] for r in client.run("agents_in_organ", organ_id="o1")] == ["b", "c"]
    assert client.run("remove_agent", agent_id="c") == [{"removed": True, "version": 3}]
    assert remove_agent(client, "c") is False and client.version() == 3
    rows = client.run("route_candidates", skills=[], models=["n"], organ_id=None, min_gpus=0.0,
                      requires=[], limit=10)  # fmt: skip
    assert rows == [{"agent_id": "a", "organ_id": "o2", "namespace": ""}]
    other = MockGraphClient(uri=falkordb_server)
    assert other.list_agent_specs() == [] and other.graph_name != client.graph_name
    names = {client.graph_name, other.graph_name}
    client.close()
    other.close()
    with FalkorDBGraphClient(falkordb_server) as probe:
        assert names.isdisjoint(probe._db.list_graphs()), "close() deletes the private graph"


def test_mock_client_defaults_to_the_embedded_server_under_the_state_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PORT_ENV, str(_free_port()))
    monkeypatch.setenv("SEEDCORE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("SEEDCORE_GRAPH_URI", raising=False)
    try:
        with MockGraphClient([AgentSpec(agent_id="a", organ_id="o")]) as client:
            assert client.port == int(os.environ[PORT_ENV])
            assert (tmp_path / "state" / "graph" / "falkordb.pid").is_file()
            assert [s.agent_id for s in client.list_agent_specs()] == ["a"]
    finally:
        stop_falkordb(tmp_path / "state" / "graph")


def test_neo4j_uri_credentials_and_database(monkeypatch: pytest.MonkeyPatch) -> None:
    from seedcore_thin.graph.neo4j import split_neo4j_uri

    monkeypatch.delenv("NEO4J_USER", raising=False)
    monkeypatch.delenv("NEO4J_DATABASE", raising=False)
    assert split_neo4j_uri("neo4j+s://u%40x:p%3Ass@db.example:7687/fleet") == (
        "neo4j+s://db.example:7687",
        ("u@x", "p:ss"),
        "fleet",
    )
    assert split_neo4j_uri("bolt://localhost:7687") == ("bolt://localhost:7687", None, None)
    monkeypatch.setenv("NEO4J_USER", "reader")
    monkeypatch.setenv("NEO4J_PASSWORD", "secret")
    monkeypatch.setenv("NEO4J_DATABASE", "desired")
    assert split_neo4j_uri("neo4j://h") == ("neo4j://h", ("reader", "secret"), "desired")
    with pytest.raises(ConfigError):
        split_neo4j_uri("http://h:7474")


def _lingering_on(port: int) -> bool:
    """Whether a closed connection still holds local port ``port`` (FIN-WAIT, TIME-WAIT)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                return True
    return False


def _answers_within(client: GraphClient, seconds: float) -> float:
    """Seconds until ``client`` answers again; fails after ``seconds``."""
    start = time.monotonic()
    while True:
        try:
            client.version()
            return time.monotonic() - start
        except GraphUnavailable:
            if time.monotonic() - start > seconds:
                raise
            time.sleep(0.05)


@pytest.fixture
def roaming_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private embedded server home with no configured port (it chooses and remembers)."""
    monkeypatch.delenv(PORT_ENV, raising=False)
    home = tmp_path / "graph"
    yield home
    stop_falkordb(home)


def test_restart_keeps_the_port_and_an_old_client_works_again(roaming_home: Path) -> None:
    with connect_graph(f"falkordb+embedded://{roaming_home}") as client:
        assert isinstance(client, FalkorDBGraphClient)
        port = client.port
        migrate_graph(client)
        version = upsert_agent(client, AgentSpec(agent_id="a", organ_id="o"))
        assert stop_falkordb(roaming_home)
        assert _lingering_on(port), "the connections it closed still hold the server's port"
        started = time.monotonic()
        with pytest.raises(GraphUnavailable):
            client.version()  # down: a clear error at once, no retry storm
        assert time.monotonic() - started < 1.0
        assert start_falkordb(roaming_home) == f"falkordb://127.0.0.1:{port}"
        assert _answers_within(client, 2.0) < 2.0
        assert client.version() == version and client.port == port


def test_a_moved_embedded_server_is_followed_through_its_port_file(
    roaming_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with connect_graph(f"falkordb+embedded://{roaming_home}") as client:
        assert isinstance(client, FalkorDBGraphClient)
        old_port = client.port
        migrate_graph(client)
        version = upsert_agent(client, AgentSpec(agent_id="a", organ_id="o"))
        stop_falkordb(roaming_home)
        monkeypatch.setenv(PORT_ENV, str(_free_port()))  # it comes back elsewhere
        uri = start_falkordb(roaming_home)
        monkeypatch.delenv(PORT_ENV)
        assert uri != f"falkordb://127.0.0.1:{old_port}"
        assert client.version() == version, "the read follows the server to its new port"
        assert client.port == int(uri.rsplit(":", 1)[1])
    with FalkorDBGraphClient(f"{uri}/fleet") as fixed:  # a plain URI does not move
        stop_falkordb(roaming_home)
        started = time.monotonic()
        with pytest.raises(GraphUnavailable):
            fixed.version()
        assert time.monotonic() - started < 1.0


def test_the_remembered_port_is_left_only_when_really_taken(
    roaming_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as other:  # another service listens on the remembered port
        other.bind(("127.0.0.1", 0))
        other.listen()
        taken = other.getsockname()[1]
        roaming_home.mkdir(parents=True)
        (roaming_home / "falkordb.port").write_text(f"{taken}\n")
        with caplog.at_level(logging.WARNING, "seedcore_thin.local.falkordb"):
            uri = start_falkordb(roaming_home)
    assert uri != f"falkordb://127.0.0.1:{taken}"
    assert f"port {taken} (used last time) is taken" in caplog.text
    assert (roaming_home / "falkordb.port").read_text().strip() == uri.rsplit(":", 1)[1]


def test_reads_decode_every_value_as_the_falkordb_client_does(graph: FalkorDBGraphClient) -> None:
    """The client decodes compact replies itself (nulls, strings, numbers, lists inline) and
    hands the rest to falkordb's parser: the rows must equal what falkordb's QueryResult says."""
    graph.execute_statement("CREATE (:Probe {name: 'p', n: 3, tags: ['a', 'b']})")
    query = (
        "MATCH (p:Probe) RETURN null AS none, 1 AS one, -2.5 AS real, 'é€ \\t' AS text, "
        "[1, null, 'x', 2.5, [true, {k: 'v'}], []] AS nested, true AS flag, {k: [1]} AS map, "
        "p AS node, 9007199254740993 AS big, [p.tags, [p.n]] AS props"
    )
    ours = graph.execute_statement(query)
    theirs = graph._graph.ro_query(query)
    columns = [name for _, name in theirs.header]
    assert ours == [dict(zip(columns, row, strict=True)) for row in theirs.result_set]
    assert ours[0]["nested"][:4] == [1, None, "x", 2.5] and ours[0]["big"] == 9007199254740993


def _pid(home: Path) -> int:
    pid = read_int(home / "falkordb.pid")
    assert pid is not None
    return pid


def test_a_server_stuck_at_start_is_killed_and_started_again(
    own_home: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """FalkorDB now and then deadlocks replaying its append-only file: here a real server
    stops answering (SIGSTOP) right after its first start, as that one never answers."""
    real_launch = embedded._launch
    stuck: list[int] = []

    def first_one_hangs(home: Path, port: int) -> bool:
        answered = real_launch(home, port)
        if stuck:
            return answered
        stuck.append(_pid(home))
        os.kill(stuck[0], signal.SIGSTOP)
        return False  # what the real wait says after _START_TIMEOUT_S of silence

    monkeypatch.setattr(embedded, "_launch", first_one_hangs)
    with caplog.at_level(logging.WARNING, logger=embedded.__name__):
        uri = start_falkordb(own_home)
    assert falkordb_status(own_home) == uri and _pid(own_home) != stuck[0]
    assert not embedded._alive(stuck[0])
    assert "killing pid" in caplog.text


def test_a_server_that_ignores_sigterm_is_killed_on_stop(
    own_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start_falkordb(own_home)
    pid = _pid(own_home)
    os.kill(pid, signal.SIGSTOP)  # a stopped process leaves SIGTERM pending
    monkeypatch.setattr(embedded, "_STOP_TIMEOUT_S", 1.0)
    assert stop_falkordb(own_home) is True
    assert not embedded._alive(pid) and falkordb_status(own_home) is None
