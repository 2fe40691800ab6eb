"""Law documents: built-ins, identity, and malformed files (clear errors, never half-loaded)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetbid.laws.book import LawBook, builtin_laws, load_law_file, resolve
from fleetbid.laws.schema import English, LawError, Vickrey, law_hash, parse_law

MINIMAL = 'name = "mine"\n[auction]\ntype = "vickrey"\n'


def test_the_four_builtin_laws_load_with_distinct_hashes() -> None:
    laws = builtin_laws()
    assert set(laws) == {"sealed-first-price", "vickrey", "english", "dutch"}
    assert {law.kind for law in laws.values()} == set(laws)
    hashes = {law_hash(law) for law in laws.values()}
    assert len(hashes) == 4 and all(len(h) == 64 for h in hashes)


def test_hash_is_of_the_canonical_form_not_the_text() -> None:
    explicit = parse_law('# comment\nname = "mine"\n[auction]\ntype = "vickrey"\nreserve = 0\n'
                         '[audit]\nkinds = ["outbid", "bid"]\n')
    implicit = parse_law(MINIMAL + '[audit]\nkinds = ["bid", "outbid"]\n')
    assert law_hash(explicit) == law_hash(implicit)
    other = parse_law(MINIMAL.replace("vickrey", "sealed-first-price"))
    assert law_hash(other) != law_hash(implicit)
    assert isinstance(implicit.auction, Vickrey)


def test_parameters_of_the_auction_type() -> None:
    law = parse_law('name = "e"\n[auction]\ntype = "english"\nincrement = 0.05\n')
    assert isinstance(law.auction, English) and law.auction.increment == 0.05


@pytest.mark.parametrize(("text", "expected"), [
    ("name = ", "not valid TOML"),
    ('name = "x"\n', "auction: Field required"),
    ('name = "Bad Name"\n[auction]\ntype = "vickrey"\n', "name: String should match"),
    ('name = "x"\n[auction]\ntype = "candle"\n', "auction: Input tag 'candle'"),
    ('name = "x"\n[auction]\ntype = "vickrey"\nincrement = 0.1\n',
     "auction.vickrey.increment: Extra inputs are not permitted"),
    ('name = "x"\n[auction]\ntype = "english"\nincrement = "big"\n',
     "auction.english.increment: Input should be a valid number"),
    ('name = "x"\n[auction]\ntype = "dutch"\nstep = 1.5\n', "auction.dutch.step"),
    ('name = "x"\n[auction]\ntype = "vickrey"\n[eligibility]\nradius_m = -5\n',
     "eligibility.radius_m: Input should be greater than 0"),
    ('name = "x"\n[auction]\ntype = "vickrey"\n[audit]\nkinds = ["gossip"]\n',
     "unknown message kinds ['gossip']"),
    ('name = "x"\n[auction]\ntype = "vickrey"\n[certification]\nlifetime_s = true\n',
     "certification.lifetime_s"),
    ('name = "x"\nsurprise = 1\n[auction]\ntype = "vickrey"\n', "surprise: Extra inputs"),
])
def test_malformed_laws_give_a_clear_error(text: str, expected: str) -> None:
    with pytest.raises(LawError) as info:
        parse_law(text, "my.toml")
    assert expected in str(info.value)
    assert str(info.value).startswith("my.toml")


def test_every_mistake_is_listed_at_once() -> None:
    text = ('name = "X"\n[auction]\ntype = "english"\nincrement = 3\nopening = -1\n'
            '[eligibility]\nmin_seats = 0\n')
    with pytest.raises(LawError) as info:
        parse_law(text)
    message = str(info.value)
    assert "4 mistake(s)" in message
    for where in ("name", "auction.english.increment", "auction.english.opening",
                  "eligibility.min_seats"):
        assert f"- {where}:" in message


def test_bad_files_never_half_load(tmp_path: Path) -> None:
    book = LawBook(builtin_laws()["sealed-first-price"])
    before = dict(book.by_hash)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00name")
    huge = tmp_path / "huge.toml"
    huge.write_text(MINIMAL + "#" * 300_000)
    for path, expected in [(binary, "not UTF-8"), (huge, "at most"),
                           (tmp_path / "missing.toml", "cannot read")]:
        with pytest.raises(LawError, match=expected):
            book.add(load_law_file(path))
    assert book.by_hash == before


def test_resolve_names_then_files(tmp_path: Path) -> None:
    assert resolve("vickrey") is builtin_laws()["vickrey"]
    path = tmp_path / "mine.toml"
    path.write_text(MINIMAL)
    assert resolve(str(path)).name == "mine"
    with pytest.raises(LawError, match="no built-in law 'nosuch'"):
        resolve("nosuch")
