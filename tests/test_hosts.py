"""Several hosts without starting anything: join slots, the join section of the state file,
a node's replica settings, the host options (docs/hosts.md)."""

from __future__ import annotations

import dataclasses
import socket
import stat
from pathlib import Path

import pytest

from fleetbid.cli import build_parser, main
from fleetbid.core.config import RunConfig
from fleetbid.core.roles import Role
from fleetbid.maps import load_map
from fleetbid.options import config_from
from fleetbid.platform.accounts import AccountKeys
from fleetbid.platform.xmpp_server import XmppEndpoint
from fleetbid.run.node import JoinError, manager_specs, slot_plan
from fleetbid.run.population import Names, Plan, make_plan, vehicle_start_nodes
from fleetbid.run.replica_setup import replica_settings
from fleetbid.service.join import (
    NotJoinable,
    join_path,
    node_endpoint,
    node_replica,
    read_join,
    with_join,
    write_join,
)
from fleetbid.service.state import ServeState, read_state, stale_reason, write_state

KEYS = AccountKeys.from_master("m" * 64)
ENDPOINT = XmppEndpoint("10.77.0.1", 5222, "localhost", True, KEYS)


def plan_for(config: RunConfig) -> Plan:
    return make_plan(config, ENDPOINT, ["n"] * config.vehicles, Names())


def test_join_slots_are_vehicles_of_the_directory_that_no_process_runs() -> None:
    plan = plan_for(RunConfig(vehicles=2, join_slots=3, replicas=1))
    slots = [f"vehicle-{i}@localhost" for i in (2, 3, 4)]
    assert all(plan.directory.role_of(jid) == Role.VEHICLE for jid in slots)
    started = {spec.name for specs in plan.processes for spec in specs}
    assert not started & {"vehicle-2", "vehicle-3", "vehicle-4"}
    assert {"vehicle-0", "vehicle-1"} <= started


def test_replica_slots_take_the_lowest_ids_and_grow_the_group_s_target() -> None:
    config = RunConfig(vehicles=2, replicas=3, standby_hosts=1, replica_slots=2,
                       mcast_interface="10.77.0.1", mcast_ttl=4, mcast_group="239.1.2.3")
    plan = plan_for(config)
    assert sorted(plan.replica_hosts.values()) == [(2, True), (3, False), (4, False),
                                                   (5, False)]
    settings = next(iter(replica_settings(plan, net=config).values()))
    group = settings.group
    assert group.target_size == 3 + 2
    assert (group.interface, group.ttl, group.multicast_addr) == ("10.77.0.1", 4, "239.1.2.3")


def test_without_options_the_replicas_multicast_stays_on_loopback() -> None:
    plan = plan_for(RunConfig(vehicles=2, replicas=3))
    group = next(iter(replica_settings(plan).values())).group
    assert (group.interface, group.ttl) == ("127.0.0.1", 1)
    assert group.multicast_addr.startswith("239.255.")


def state_of(config: RunConfig, path: Path) -> ServeState:
    plan = plan_for(config)
    replicas = replica_settings(plan, net=config) if plan.replica_hosts else {}
    state = ServeState.describe(config, ENDPOINT, plan.directory, 1.0, "m")
    write_state(path, write_join(path, with_join(state, config, ENDPOINT, Names(), replicas)))
    written = read_state(path)
    return read_join(written, join_path(path)) if join_path(path).exists() else written


def test_the_join_token_is_never_in_the_state_file_and_in_a_join_file_only_when_allowed(
        tmp_path: Path) -> None:
    path = tmp_path / "serve.json"
    closed = state_of(RunConfig(vehicles=2, replicas=3), path)
    assert str(KEYS.fleet) not in path.read_text() and not join_path(path).exists()
    assert not closed.join_token and not closed.replica_group
    with pytest.raises(NotJoinable, match="--join-slots"):
        node_endpoint(closed)
    with pytest.raises(NotJoinable, match="--replica-slots"):
        node_replica(closed, 0, "10.77.0.2")
    joinable = state_of(RunConfig(vehicles=2, join_slots=2, replicas=3, replica_slots=1), path)
    group_key = joinable.replica_group["config"]["key"]
    # The state file (what clients get) holds neither key; the join file (nodes) holds both.
    assert str(KEYS.fleet) not in path.read_text() and group_key not in path.read_text()
    secrets = join_path(path).read_text()
    assert str(KEYS.fleet) in secrets and group_key in secrets
    assert stat.S_IMODE(join_path(path).stat().st_mode) == 0o600
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert joinable.join_slots == ["vehicle-2@localhost", "vehicle-3@localhost"]
    assert node_endpoint(joinable).accounts == KEYS  # the node's vehicles are fleet agents
    assert read_state(path).endpoint().accounts == KEYS.for_clients()
    assert str(KEYS.fleet) not in repr(joinable) and group_key not in repr(joinable)
    other = dataclasses.replace(read_state(path), pid=read_state(path).pid + 1)
    with pytest.raises(NotJoinable, match="not the one of this serve"):
        read_join(other, join_path(path))


def test_a_node_s_replica_is_a_standby_on_its_own_interface(tmp_path: Path) -> None:
    config = RunConfig(vehicles=2, join_slots=2, replicas=3, standby_hosts=0, replica_slots=2)
    state = state_of(config, tmp_path / "serve.json")
    settings = node_replica(state, 1, "10.77.0.3")
    serve_side = next(iter(replica_settings(plan_for(config), net=config).values()))
    assert settings.standby and settings.member_id == 1
    assert settings.initial_members == (2, 3, 4)
    assert settings.group.interface == "10.77.0.3"
    assert settings.group.target_size == 5 and len(settings.group.key) == 32
    assert serve_side.group.key != settings.group.key  # each serve makes a fresh group
    with pytest.raises(NotJoinable, match="replica slot 2"):
        node_replica(state, 2, "10.77.0.3")
    directory = state.directory()
    assert [s.name for s in manager_specs(directory)] == \
        [f"auction-{i}" for i in range(config.auction_managers)]


def test_slots_start_where_the_serve_s_seeded_positions_leave_off() -> None:
    config = RunConfig(vehicles=3, join_slots=4)
    jids = [f"vehicle-{i}@localhost" for i in range(3, 7)]
    slots = slot_plan(config, jids, 1, 2)
    starts = vehicle_start_nodes(load_map(None, 0), 7, 0)
    assert [(s.index, s.name, s.node) for s in slots] == [
        (1, "vehicle-4", starts[4]), (2, "vehicle-5", starts[5])]
    with pytest.raises(JoinError, match="not among the fleet's 4 join slots"):
        slot_plan(config, jids, 3, 2)


@pytest.mark.parametrize(("args", "needle"), [
    (["serve", "--listen", "localhost"], "is not an IPv4 address"),
    (["serve", "--mcast-group", "10.1.2.3"], "is not a multicast group"),
    (["serve", "--mcast-ttl", "0"], "--mcast-ttl"),
    (["serve", "--join-slots", "-1"], "--join-slots"),
    (["node"], "--join"),
    (["node", "--join", "x", "--replica-slot", "-2"], "--replica-slot"),
])
def test_bad_host_options_are_usage_errors(
        args: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(args)
    assert exited.value.code == 2
    assert needle in capsys.readouterr().err


def test_host_options_reach_the_run_config() -> None:
    args = build_parser().parse_args(["serve", "--listen", "10.77.0.1", "--mcast-interface",
                                      "10.77.0.1", "--mcast-ttl", "3", "--mcast-group",
                                      "239.9.9.9"])
    config = config_from(args)
    assert (config.listen, config.mcast_interface, config.mcast_ttl, config.mcast_group) == \
        ("10.77.0.1", "10.77.0.1", 3, "239.9.9.9")
    default = config_from(build_parser().parse_args(["serve"]))
    assert (default.listen, default.mcast_interface, default.mcast_group) == \
        ("127.0.0.1", "127.0.0.1", "")


def test_a_node_refuses_a_fleet_that_takes_no_joiners(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "serve.json"
    state_of(RunConfig(vehicles=2, replicas=1), path)
    assert main(["node", "--join", str(path)]) == 1
    assert "no join file" in capsys.readouterr().err


def test_a_serve_on_another_host_is_judged_by_its_server_not_its_pid(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        here = dataclasses.replace(
            state_of(RunConfig(vehicles=2, join_slots=1, replicas=1), tmp_path / "s.json"),
            host="127.0.0.1", port=port, pid=2**22 + 1)  # above pid_max: never alive
        assert "is gone" in str(stale_reason(here))  # this host's serve: its pid counts
        elsewhere = dataclasses.replace(here, hostname=here.hostname + "-other")
        assert stale_reason(elsewhere) is None  # another host's serve: its server answers
    assert "nothing accepts" in str(stale_reason(elsewhere))
