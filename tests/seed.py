"""The seed's API page and its client examples, kept in ``tests/fixtures/seed`` (see its README)."""

from __future__ import annotations

from tests.conftest import ROOT

__all__ = ["SEED_DIR", "SEED_HOST", "SEED_PAGE", "seed_example"]

SEED_DIR = ROOT / "tests" / "fixtures" / "seed"
SEED_PAGE = SEED_DIR / "seed-api-doc.txt"
SEED_HOST = "https://aa.stjuntai.xyz"  # the seed's own host, which every example posts to


def seed_example(name: str) -> str:
    """One of the seed's examples (``send.sh``, ``send.php``, ``send.py``, ``send.js``), verbatim."""
    return (SEED_DIR / name).read_text(encoding="utf-8")
