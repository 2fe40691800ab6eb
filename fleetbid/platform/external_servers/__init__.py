"""Real XMPP servers (Prosody, ejabberd from the OS packages) that fleetbid configures and runs.

`ManagedServer` (server.py) owns the process; prosody.py and ejabberd.py only write configs.
"""
