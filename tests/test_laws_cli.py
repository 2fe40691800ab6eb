"""`fleetbid laws list|show|check` and `--law` on the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetbid.cli import main
from fleetbid.laws.book import builtin_laws
from fleetbid.laws.schema import law_hash


def test_list_and_show(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["laws", "list"]) == 0
    listed = capsys.readouterr().out
    for name, law in builtin_laws().items():
        assert name in listed and law_hash(law)[:16] in listed
    assert main(["laws", "show", "dutch"]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"# sha256 {law_hash(builtin_laws()['dutch'])}")
    assert '"type": "dutch"' in shown


def test_check_reports_every_mistake(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[auction]\ntype = "vickrey"\nreserve = -1\n'
                   '[audit]\nkinds = ["nope"]\n')
    assert main(["laws", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "2 mistake(s)" in err and "auction.vickrey.reserve" in err and "'nope'" in err
    good = tmp_path / "good.toml"
    good.write_text('name = "x"\n[auction]\ntype = "vickrey"\n')
    assert main(["laws", "check", str(good)]) == 0
    assert "valid law 'x' (vickrey)" in capsys.readouterr().out


def test_run_with_an_unknown_law_fails_before_starting(capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    assert main(["run", "--law", "no-such-law", "--requests", "1"]) == 2
    assert "no built-in law 'no-such-law'" in capsys.readouterr().err
