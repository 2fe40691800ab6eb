"""Names `fleetbid bench servers` accepts (here, so the CLI parser loads no server code)."""

from __future__ import annotations

# prosody-debian-limits: Prosody with the c2s rate limit of Debian's sample config.
SERVERS = ["embedded", "prosody", "prosody-debian-limits", "ejabberd"]
DEFAULT_SERVERS = ["embedded", "prosody", "ejabberd"]
