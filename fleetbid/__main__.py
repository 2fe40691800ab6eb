"""`python -m fleetbid` runs the `fleetbid` command."""

from fleetbid.cli import entry

entry()
