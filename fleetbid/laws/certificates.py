"""Ed25519 certificates binding a vehicle's JID to its attributes, with an expiry.

The authority signs the canonical JSON of every field but `signature` (msgspec encodes
struct fields in declaration order, so the bytes are stable). Anyone holding the
authority's public key checks signature, subject, expiry and revocation locally.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import zlib

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from fleetbid.protocol.law_messages import Certificate

_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(Certificate)


def new_key() -> tuple[str, str]:
    """A fresh authority key pair as (private hex, public hex)."""
    private = Ed25519PrivateKey.generate()
    return private.private_bytes_raw().hex(), private.public_key().public_bytes_raw().hex()


def vehicle_attributes(jid: str) -> tuple[int, bool]:
    """(seats, wheelchair access) the authority registers for a vehicle: a fixed, seeded
    property of its identity (about one vehicle in four is wheelchair accessible)."""
    mix = zlib.crc32(jid.encode())
    return 4 + (mix % 3), mix % 4 == 0


def _payload(cert: Certificate) -> bytes:
    return _ENCODER.encode(msgspec.structs.replace(cert, signature=""))


def issue(
    private_hex: str, subject: str, issuer: str, now: float, lifetime_s: float
) -> Certificate:
    seats, wheelchair = vehicle_attributes(subject)
    cert = Certificate(subject=subject, issuer=issuer, serial=secrets.token_hex(16),
                       seats=seats, wheelchair=wheelchair, issued_at=now,
                       expires_at=now + lifetime_s)
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(private_hex))
    signature = base64.b64encode(key.sign(_payload(cert))).decode()
    return msgspec.structs.replace(cert, signature=signature)


def encode(cert: Certificate) -> str:
    return _ENCODER.encode(cert).decode()


def decode(text: str) -> Certificate:
    """Raise ValueError on anything that is not a well-formed certificate."""
    try:
        return _DECODER.decode(text.encode())
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ValueError(f"malformed certificate: {exc}") from None


def problem(
    cert: Certificate, public_hex: str, subject: str, now: float,
    revoked: set[str] | frozenset[str], signature_checked: bool = False,
) -> str | None:
    """Why `cert` does not certify `subject` now, or None if it does."""
    if cert.subject != subject:
        return f"certificate is for {cert.subject}, not {subject}"
    if not signature_checked:
        bad = signature_problem(cert, public_hex)
        if bad is not None:
            return bad
    if cert.serial in revoked:
        return f"certificate {cert.serial} of {subject} was revoked"
    if now >= cert.expires_at:
        return f"certificate {cert.serial} of {subject} expired at t={cert.expires_at:.0f} s"
    return None


def signature_problem(cert: Certificate, public_hex: str) -> str | None:
    try:
        signature = base64.b64decode(cert.signature, validate=True)
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex)).verify(
            signature, _payload(cert))
    except (InvalidSignature, binascii.Error, ValueError):
        return f"certificate {cert.serial} has a forged or invalid signature"
    return None
