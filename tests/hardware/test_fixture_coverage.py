"""Every file in the shared hardware fixture directory is named by a test in this folder."""

from __future__ import annotations

from pathlib import Path


def test_every_fixture_file_is_covered(hw: Path) -> None:
    files = {p.name for p in hw.rglob("*") if p.is_file() and p.name != "SOURCES.md"}
    assert len(files) >= 24
    here = Path(__file__).parent
    test_text = "".join(p.read_text() for p in here.glob("test_fixtures_*.py"))
    uncovered = sorted(name for name in files if name not in test_text)
    assert uncovered == [], f"fixtures without a test: {uncovered}"
