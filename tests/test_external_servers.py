"""The configs `fleetbid xmpp` writes (no server started): loopback only, no s2s,
registration from loopback only, no traffic throttling; the certificate; the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from fleetbid.cli import build_parser
from fleetbid.platform.external_servers.certs import write_self_signed
from fleetbid.platform.external_servers.ejabberd import Ejabberd
from fleetbid.platform.external_servers.flavors import FLAVORS
from fleetbid.platform.external_servers.prosody import Prosody
from fleetbid.platform.external_servers.server import Layout, ManagedServer


def _layout(tmp_path: Path) -> Layout:
    return Layout(tmp_path, "127.0.0.1", 47222, "fleet.test", tmp_path / "c.pem",
                  tmp_path / "k.pem", 1_200_000)


def test_prosody_config_is_loopback_only_without_s2s_or_throttling(tmp_path: Path) -> None:
    command = Prosody().write_config(_layout(tmp_path))
    text = (tmp_path / "prosody.cfg.lua").read_text()
    assert command[:2] == ["prosody", "-F"]
    assert 'c2s_interfaces = { "127.0.0.1" }' in text and "c2s_ports = { 47222 }" in text
    assert 'modules_disabled = { "s2s", "offline" }' in text and "s2s_ports = { }" in text
    assert "whitelist_registration_only = true" in text
    assert 'registration_whitelist = { "127.0.0.1", "::1" }' in text
    assert '"limits"' not in text  # Debian's sample config throttles c2s to 10 kB/s
    assert "nagle = false" in text
    assert "c2s_stanza_size_limit = 1200000" in text
    assert 'VirtualHost "fleet.test"' in text


def test_ejabberd_config_is_loopback_only_without_s2s_or_shaper(tmp_path: Path) -> None:
    command = Ejabberd().write_config(_layout(tmp_path))
    text = (tmp_path / "ejabberd.yml").read_text()
    ctl = (tmp_path / "ejabberdctl.cfg").read_text()
    assert command[0] == "ejabberdctl" and command[-1] == "foreground"
    assert "--node" in command and "fleetbid-47222@localhost" in command
    assert 'ip: "127.0.0.1"' in text and "port: 47222" in text
    assert "ejabberd_s2s_in" not in text and "s2s: {deny: all}" in text
    assert "register_ip: {allow: loopback}" in text and "ip_access: register_ip" in text
    assert "registration_timeout: infinity" in text
    assert "shaper: none" in text and "c2s_shaper: none" in text
    assert "max_stanza_size: 1200000" in text
    # Erlang distribution: loopback, a fixed port, no epmd.
    assert "INET_DIST_INTERFACE=127.0.0.1" in ctl and "ERL_DIST_PORT=" in ctl


@pytest.mark.parametrize("domain", ['evil" }\nmodules_enabled = {', "a b", "", "x@y", "-a"])
def test_a_domain_that_could_break_the_config_is_refused(tmp_path: Path, domain: str) -> None:
    with pytest.raises(ValueError, match="domain"):
        ManagedServer(Prosody(), tmp_path, domain=domain)


def test_servers_listen_on_loopback_only(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="loopback"):
        ManagedServer(Ejabberd(), tmp_path, host="0.0.0.0")


def test_self_signed_certificate_names_the_domain(tmp_path: Path) -> None:
    write_self_signed(tmp_path / "c.pem", tmp_path / "k.pem", "fleet.test")
    cert = x509.load_pem_x509_certificate((tmp_path / "c.pem").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "fleet.test" in names.get_values_for_type(x509.DNSName)
    assert (tmp_path / "k.pem").stat().st_mode & 0o077 == 0


def test_cli_xmpp_options() -> None:
    args = build_parser().parse_args(["xmpp", "ejabberd", "--dir", "/tmp/x", "--port", "5333"])
    assert (args.server, args.dir, args.port) == ("ejabberd", "/tmp/x", 5333)
    assert set(FLAVORS) == {"prosody", "ejabberd"}


@pytest.mark.parametrize("argv", [
    ["xmpp", "openfire", "--dir", "d"], ["xmpp", "prosody"],
    ["xmpp", "prosody", "--dir", "d", "--port", "70000"],
    ["xmpp", "prosody", "--dir", "d", "--port", "0"],
])
def test_cli_xmpp_bad_options_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(argv)
    assert exit_.value.code == 2


def test_the_xmpp_server_option_reaches_fleet(xmpp_server_choice: str) -> None:
    # --xmpp-server prosody|ejabberd swaps the server class Fleet starts (tests/conftest.py).
    from fleetbid.platform.xmpp_server import EmbeddedXmppServer
    from fleetbid.run import launcher

    swapped = launcher.EmbeddedXmppServer is not EmbeddedXmppServer
    assert swapped == (xmpp_server_choice != "embedded")


def test_an_ejabberd_cluster_node_binds_its_address_and_keeps_the_cookie_private(
        tmp_path: Path) -> None:
    from fleetbid.platform.external_servers.ejabberd import ClusterNode

    node = ClusterNode("ejabberd@10.77.0.2", "10.77.0.2", 4370, "s3cret",
                       register_from=("10.77.0.0/24",))
    layout = Layout(tmp_path, "10.77.0.2", 5222, "fleet.test", tmp_path / "c.pem",
                    tmp_path / "k.pem", 1_200_000)
    command = Ejabberd(node).write_config(layout)
    text = (tmp_path / "ejabberd.yml").read_text()
    ctl = (tmp_path / "ejabberdctl.cfg").read_text()
    vm_args = tmp_path / "vm.args"
    assert command[command.index("--node") + 1] == "ejabberd@10.77.0.2"
    assert 'ip: "10.77.0.2"' in text and 'ip: ["10.77.0.0/24"]' in text
    assert "mod_admin_extra" in text
    # One distribution port for every node (no epmd), on the node's own address only.
    assert "ERL_DIST_PORT=4370" in ctl and "INET_DIST_INTERFACE=10.77.0.2" in ctl
    # The cookie: in a file only the owner reads, never in a command line or config text.
    assert vm_args.read_text() == "-setcookie s3cret\n"
    assert vm_args.stat().st_mode & 0o077 == 0
    assert "s3cret" not in ctl + text + " ".join(command) and "s3cret" not in repr(node)


def test_a_server_off_loopback_needs_a_namespace(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="loopback"):
        ManagedServer(Ejabberd(), tmp_path, host="10.77.0.1")
    ManagedServer(Ejabberd(), tmp_path, host="10.77.0.1",
                  command_prefix=["ip", "netns", "exec", "fb-x-h1"])
