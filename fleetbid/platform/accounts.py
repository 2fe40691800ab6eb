"""Account passwords on the embedded server, derived from a per-run secret.

The embedded server accepts an in-band registration only when the password is
``HMAC-SHA256(scope key, username)``: nobody without a key can create an account, and so
nobody can pre-register a predictable agent name (``vehicle-7``) before the fleet does.

Two scopes, so that a client process (``fleetbid request``, ``fleetbid laws complain``)
never holds the key of the fleet's own agents: the CLIENT key derives passwords only for
one-off client names (``passenger-*``, ``complainant-*``); the FLEET key for every other
name. The launcher holds both (it also runs passengers); the serve state file holds only
the CLIENT key. Neither this module nor its users import pyjabber.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

# The server child reads its master secret from here (never from its command line).
SECRET_ENV = "FLEETBID_XMPP_SECRET"

FLEET = "fleet"
CLIENT = "client"
CLIENT_PREFIXES = ("passenger-", "complainant-")


class AccountKeyError(ValueError):
    """This process holds no key for the scope of the account it wants to use."""


def new_secret() -> str:
    return secrets.token_hex(32)


def scope_of(username: str) -> str:
    return CLIENT if username.startswith(CLIENT_PREFIXES) else FLEET


def scope_key(master: str, scope: str) -> str:
    # Distinct labels keep a scope key from ever equalling an account password.
    return _mac(master, f"fleetbid-xmpp-scope:{scope}")


def account_password(key: str, username: str) -> str:
    return _mac(key, f"fleetbid-xmpp-account:{username}")


def registration_allowed(master: str, username: str, password: str) -> bool:
    """Server side: is `password` the one derived for `username` from `master`?"""
    expected = account_password(scope_key(master, scope_of(username)), username)
    return hmac.compare_digest(expected.encode(), password.encode())


def _mac(key: str, text: str) -> str:
    return hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class AccountKeys:
    """The scope keys a process holds; `fleet` is None in client processes.

    repr=False: endpoints get logged and printed, keys must not be.
    """

    client: str = field(repr=False)
    fleet: str | None = field(default=None, repr=False)

    @classmethod
    def from_master(cls, master: str) -> AccountKeys:
        return cls(client=scope_key(master, CLIENT), fleet=scope_key(master, FLEET))

    def for_clients(self) -> AccountKeys:
        """What a client process may hold (written to the serve state file)."""
        return AccountKeys(client=self.client)

    def password_for(self, username: str) -> str:
        key = self.client if scope_of(username) == CLIENT else self.fleet
        if key is None:
            raise AccountKeyError(
                f"no key to log in as {username!r}: client processes may only use names "
                f"starting with {' or '.join(CLIENT_PREFIXES)}"
            )
        return account_password(key, username)
