"""`fleetbid serve` and `fleetbid request`: a long-running fleet and clients that join it.

`serve` keeps a population running and describes it in a state file; `request` reads that
file and takes part as one or more PassengerPersonalAgents of its own process.
"""
