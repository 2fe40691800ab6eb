"""Pure auction logic (no I/O): bid rule, bid ranking, proxy grouping, admission.

Behaviours call into this; tests exercise it directly and through the real agents.
"""
