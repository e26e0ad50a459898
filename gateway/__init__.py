"""SMS Edge: one HTTP API in front of pluggable SMS carriers."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
