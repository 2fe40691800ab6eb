"""fleetbid: procurement-auction dispatch for vehicle fleets on SPADE agents over XMPP."""

__version__ = "0.1.0"
