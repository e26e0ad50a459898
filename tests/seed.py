"""The seed's API page and its client examples, kept in ``tests/fixtures/seed`` (see its README), and
running an example as a reader would: its placeholder credentials swapped for the demo account's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

from tests.conftest import DEMO_KEY, DEMO_SECRET, ROOT

__all__ = [
    "SEED_DIR",
    "SEED_HOST",
    "SEED_PAGE",
    "run_curl",
    "run_python",
    "seed_example",
    "with_demo_credentials",
]

SEED_DIR = ROOT / "tests" / "fixtures" / "seed"
SEED_PAGE = SEED_DIR / "seed-api-doc.txt"
SEED_HOST = "https://aa.stjuntai.xyz"  # the seed's own host, which every example posts to
# What the examples (the seed's and the docs page's) put where a reader's credentials go.
PLACEHOLDERS = {
    "sk_xxxxxxxxxxxxxxxx": DEMO_KEY,
    "xxxxxxxxxxxxxxxx": DEMO_SECRET,  # after the key: it is the key's tail
    "your_api_key": DEMO_KEY,
    "your_api_secret": DEMO_SECRET,
}


def seed_example(name: str) -> str:
    """One of the seed's examples (``send.sh``, ``send.php``, ``send.py``, ``send.js``), verbatim."""
    return (SEED_DIR / name).read_text(encoding="utf-8")


def with_demo_credentials(example: str) -> str:
    for placeholder, value in PLACEHOLDERS.items():
        example = example.replace(placeholder, value)
    return example


def run_curl(command: str, *options: str, env: Mapping[str, str] | None = None) -> Any:
    """The JSON a curl example prints, run by bash with ``options`` appended to its last line."""
    return json.loads(_printed(["bash", "-c", " ".join((command, *options))], env))


def run_python(script: str, env: Mapping[str, str] | None = None) -> str:
    """What a Python example prints."""
    return _printed([sys.executable, "-c", script], env)


def _printed(argv: list[str], env: Mapping[str, str] | None) -> str:
    """Standard output of ``argv``, which must exit 0, with ``env`` added to this process's."""
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=60, check=True, env={**os.environ, **(env or {})}
    )
    return result.stdout
