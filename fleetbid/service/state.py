"""The serve state file: what a client process needs to join a running fleet.

`fleetbid serve` writes it once the fleet is ready and removes it on exit. A serve that was
killed cannot remove it, so readers treat a file whose pid is dead, or whose XMPP port no
longer accepts connections, as stale.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleetbid.core.config import RunConfig
from fleetbid.core.directory import Directory
from fleetbid.core.roles import Role
from fleetbid.platform.accounts import AccountKeys
from fleetbid.platform.xmpp_server import XmppEndpoint

VERSION = 1
DEFAULT_STATE = Path(".fleetbid") / "serve.json"
NO_FLEET = "no running fleet: start one with `fleetbid serve`"


class StateError(Exception):
    """The state file is missing, unreadable or not a fleetbid serve state."""


class NoRunningFleet(Exception):
    """No usable state file, or the serve it describes is gone."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"{NO_FLEET} ({detail})")
        self.detail = detail


def state_path(given: str | None) -> Path:
    """`--state PATH`, else `.fleetbid/serve.json` in the working directory."""
    return Path(given) if given else DEFAULT_STATE


@dataclass(frozen=True)
class ServeState:
    pid: int
    host: str
    port: int
    domain: str
    embedded: bool
    main_manager: str
    map: str  # the map spec ("builtin" or an absolute GraphML path)
    map_name: str
    seed: int
    clusters: int
    radius_m: float
    speed: float
    epoch: float  # wall time (time.time()) of simulated t=0
    auction_managers: list[str] = field(default_factory=list)
    proxies: list[str] = field(default_factory=list)
    vehicles: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)  # every RunConfig field
    # The agents laws name: certification-authority, auditor, complaints -> JID.
    law_agents: dict[str, str] = field(default_factory=dict)
    # Embedded server: the key clients derive passenger/complainant passwords from (a secret:
    # the file is written 0600). Empty for an external server.
    account_key: str = field(default="", repr=False)
    # The announcement group (platform/announce.py): address, port, key (a secret too).
    announce: dict[str, Any] = field(default_factory=dict, repr=False)
    # `serve --web`: the live map's URL and the trace its diagrams are drawn from.
    web: str = ""
    trace: str = ""
    # Only with `serve --join-slots N` (docs/hosts.md): the reserved vehicle JIDs, and the
    # fleet-scope account key a joining node logs in with (the join token: a secret, kept
    # out of this file, in the serve's join file: service/join.py).
    join_token: str = field(default="", repr=False)
    join_slots: list[str] = field(default_factory=list)
    # With `--replica-slots K`: the managers' group (its HMAC key is a secret: join file).
    replica_group: dict[str, Any] = field(default_factory=dict, repr=False)
    # The key join tokens are minted with (`fleetbid join-token`; join file only), and the
    # address and port of the serve's join service (service/join_channel.py; 0: none).
    join_key: str = field(default="", repr=False)
    join_host: str = ""
    join_port: int = 0
    # The machine serve runs on: its pid means something only there (docs/hosts.md).
    hostname: str = ""
    version: int = VERSION

    @classmethod
    def describe(
        cls, config: RunConfig, endpoint: XmppEndpoint, directory: Directory, epoch: float,
        map_name: str, pid: int | None = None, **extra: Any,
    ) -> ServeState:
        return cls(
            pid=os.getpid() if pid is None else pid, hostname=socket.gethostname(),
            host=endpoint.host, port=endpoint.port,
            domain=endpoint.domain, embedded=endpoint.embedded,
            main_manager=directory.main_manager, map=config.map or "builtin",
            map_name=map_name, seed=config.seed, clusters=config.clusters,
            radius_m=config.radius_m, speed=config.speed, epoch=epoch,
            auction_managers=list(directory.auction_managers),
            proxies=list(directory.proxies), vehicles=sorted(directory.vehicles),
            config=dataclasses.asdict(config), law_agents=directory.services(),
            account_key=endpoint.accounts.client if endpoint.accounts else "",
            **extra,
        )

    def run_config(self) -> RunConfig:
        # The client never traces: the trace file belongs to the serve's processes.
        return RunConfig(**{**self.config, "trace": None})

    def endpoint(self) -> XmppEndpoint:
        accounts = AccountKeys(client=self.account_key) if self.account_key else None
        return XmppEndpoint(self.host, self.port, self.domain, self.embedded, accounts)

    def directory(self) -> Directory:
        agents = self.law_agents
        return Directory(self.main_manager, tuple(self.auction_managers), tuple(self.proxies),
                         frozenset(self.vehicles),
                         authority=agents.get(Role.AUTHORITY, ""),
                         auditor=agents.get(Role.AUDITOR, ""),
                         complaints=agents.get(Role.COMPLAINTS, ""))


def write_state(path: Path, state: ServeState) -> None:
    """Write atomically, so a reader never sees half a file (0600: holds account_key)."""
    write_atomically(path, json.dumps(dataclasses.asdict(state), indent=2) + "\n", 0o600)


def write_atomically(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # O_EXCL below: a leftover must not keep its old permissions
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def read_state(path: Path) -> ServeState:
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise StateError(f"no state file {path}") from None
    except (OSError, ValueError) as exc:
        raise StateError(f"unreadable state file {path}: {exc}") from None
    return validate(raw, path)


def validate(raw: object, path: Path) -> ServeState:
    if not isinstance(raw, dict):
        raise StateError(f"{path} is not a JSON object")
    if raw.get("version") != VERSION:
        raise StateError(f"{path}: unsupported state version {raw.get('version')!r}")
    known = {f.name for f in dataclasses.fields(ServeState)}
    try:
        state = ServeState(**{k: v for k, v in raw.items() if k in known})
        checks = [isinstance(state.pid, int), isinstance(state.port, int),
                  isinstance(state.host, str), isinstance(state.epoch, int | float),
                  isinstance(state.config, dict), bool(state.vehicles),
                  isinstance(state.account_key, str)]
        if not all(checks):
            raise TypeError("a field has the wrong type")
        state.run_config()  # every RunConfig field present and valid
    except (TypeError, ValueError) as exc:
        raise StateError(f"{path} is not a valid serve state: {exc}") from None
    return state


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    # A killed serve whose parent has not reaped it yet still answers kill(pid, 0).
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] == "Z"
    return False


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def stale_reason(state: ServeState) -> str | None:
    """Why this state no longer describes a running serve, or None if it does."""
    # From another host (a joined node, a client elsewhere) the serve's pid is not ours to
    # check: whether its server still answers is.
    if state.hostname in ("", socket.gethostname()) and not pid_alive(state.pid):
        return f"serve pid {state.pid} is gone"
    if not port_open(state.host, state.port):
        return f"nothing accepts connections on XMPP {state.host}:{state.port}"
    return None


def load_running(path: Path) -> ServeState:
    """The state of the serve running now; NoRunningFleet otherwise."""
    try:
        state = read_state(path)
    except StateError as exc:
        raise NoRunningFleet(str(exc)) from None
    reason = stale_reason(state)
    if reason is not None:
        raise NoRunningFleet(f"stale state file {path}: {reason}")
    return state


def remove_state(path: Path, pid: int) -> None:
    """Remove the file if it is still ours (never another serve's)."""
    with contextlib.suppress(StateError, OSError):
        if read_state(path).pid == pid:
            path.unlink()
