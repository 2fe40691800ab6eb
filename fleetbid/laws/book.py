"""The laws an agent knows: the built-in ones shipped with the package, plus law files.

`resolve("vickrey")` finds a built-in law by name; anything else is read as a file path.
A `LawBook` maps names and hashes to laws; every agent of a run holds the same book, so a
hash on the wire names one law for everybody.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from fleetbid.laws.schema import Law, LawError, law_hash, parse_law

DEFAULT_LAW = "sealed-first-price"
MAX_LAW_BYTES = 256 * 1024


@functools.cache
def builtin_laws() -> dict[str, Law]:
    """Name -> law, for every TOML file shipped in fleetbid/laws/builtin."""
    found: dict[str, Law] = {}
    for entry in sorted(resources.files("fleetbid.laws").joinpath("builtin").iterdir(),
                        key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            law = parse_law(entry.read_text(encoding="utf-8"), f"built-in {entry.name}")
            found[law.name] = law
    return found


def load_law_file(path: str | Path) -> Law:
    """Read and validate a law file; raise LawError (never a half-loaded law)."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_LAW_BYTES:
            raise LawError(f"{p}: {size} bytes, a law file may have at most {MAX_LAW_BYTES}")
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise LawError(f"{p}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise LawError(f"{p}: not UTF-8 text: {exc.reason}") from None
    return parse_law(text, str(p))


def resolve(name_or_file: str) -> Law:
    """A built-in law by name, else a law file."""
    builtin = builtin_laws().get(name_or_file)
    if builtin is not None:
        return builtin
    if not Path(name_or_file).exists():
        known = ", ".join(sorted(builtin_laws()))
        raise LawError(f"no built-in law {name_or_file!r} ({known}) and no such file")
    return load_law_file(name_or_file)


@dataclass
class LawBook:
    """Laws by hash, and the default law of this run."""

    default: Law
    by_hash: dict[str, Law] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for law in (*builtin_laws().values(), self.default):
            self.by_hash.setdefault(law_hash(law), law)
        self.default_hash = law_hash(self.default)

    def add(self, law: Law) -> str:
        digest = law_hash(law)
        self.by_hash[digest] = law
        return digest

    def get(self, digest: str) -> Law | None:
        return self.by_hash.get(digest)


@functools.cache
def book_for(default: str = DEFAULT_LAW) -> LawBook:
    """The process's law book for a run whose default law is `default` (name or file)."""
    return LawBook(resolve(default))
