"""Thin entry point: ``python run.py [serve|check-config|accounts ...]``."""

import sys

from gateway.process.cli import main

if __name__ == "__main__":
    sys.exit(main())
