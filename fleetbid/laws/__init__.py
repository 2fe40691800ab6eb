"""Law-governed auctions: law documents, auction types, the controller, and the CA, auditor
and complaints agents (see docs/laws.md)."""
