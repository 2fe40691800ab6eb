"""The servers `fleetbid xmpp` knows, by name."""

from __future__ import annotations

from collections.abc import Callable

from fleetbid.platform.external_servers.ejabberd import Ejabberd
from fleetbid.platform.external_servers.prosody import Prosody
from fleetbid.platform.external_servers.server import Flavor

FLAVORS: dict[str, Callable[[], Flavor]] = {"prosody": Prosody, "ejabberd": Ejabberd}
