"""``${VAR}``, ``${VAR:-default}`` and ``${file:/path}`` in the config's values.

A variable comes from the process's environment, which is fixed when the process starts: a changed
one needs a restart. A file is read on every load, start and reload alike, so replacing a secret
file and reloading rotates the secret (systemd credentials, Kubernetes secret volumes, Docker
secrets). Substituting after YAML parsing keeps a value literal (``#``, ``: `` or leading zeros in a
secret stay as they are); readers of numbers and flags accept the text.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from typing import Any

from gateway.config.reader import ConfigError

__all__ = ["MAX_SECRET_FILE_BYTES", "Expansion", "expand_references"]

MAX_SECRET_FILE_BYTES = 65536
_REFERENCE = re.compile(
    r"\$\{(?:file:(?P<file>[^}]*)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?)\}"
)


@dataclass
class Expansion:
    """What expanding found besides the values, by key path."""

    problems: list[ConfigError] = field(default_factory=list)  # secret files that cannot be read
    missing: dict[str, str] = field(default_factory=dict)  # why a value is missing: unset, empty file


def expand_references(document: Any) -> tuple[Any, Expansion]:
    """The parsed document with its references replaced, and what the expansion found.

    A string with a reference that has no value (an unset variable without a default, an empty
    file) becomes a missing value, so a required key reports ``required`` and says why; a file that
    cannot be read is a problem of its key, whether the key is required or not.
    """
    expansion = Expansion()
    return _expand(document, "", expansion), expansion


def _expand(node: Any, path: str, expansion: Expansion) -> Any:
    if isinstance(node, dict):
        return {
            key: _expand(value, f"{path}.{key}" if path else str(key), expansion)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_expand(value, f"{path}[{index}]", expansion) for index, value in enumerate(node)]
    if not isinstance(node, str) or "${" not in node:
        return node
    missing: list[str] = []
    unreadable = len(expansion.problems)

    def replace(match: re.Match[str]) -> str:
        if match["file"] is not None:
            try:
                value = _read_secret_file(match["file"], path)
            except ConfigError as problem:
                expansion.problems.append(problem)
                return ""
            if not value:
                missing.append(f"secret file {match['file']} is empty")
            return value
        value = os.environ.get(match["name"]) or match["default"]
        if value is None:
            missing.append(f"{match['name']} is not set")
            return ""
        return value

    expanded = _REFERENCE.sub(replace, node)
    if missing:
        expansion.missing[path] = "; ".join(missing)
    return None if missing or len(expansion.problems) > unreadable else expanded


def _read_secret_file(name: str, path: str) -> str:
    """The file's text without its trailing newline; a ConfigError at ``path`` names the file and
    why it cannot be read, never what it holds."""
    if not os.path.isabs(name):
        raise ConfigError(path, f"secret file {name}: the path must be absolute")
    try:
        # Non-blocking: a FIFO named by mistake must not hang a reload; it is refused below.
        with open(os.open(name, os.O_RDONLY | os.O_NONBLOCK), "rb") as file:
            if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                raise ConfigError(path, f"secret file {name} is not a regular file")
            data = file.read(MAX_SECRET_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(path, f"cannot read secret file {name}: {exc.strerror}") from None
    if len(data) > MAX_SECRET_FILE_BYTES:
        raise ConfigError(path, f"secret file {name} is larger than {MAX_SECRET_FILE_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(path, f"secret file {name} is not UTF-8 text") from None
    return text.removesuffix("\n").removesuffix("\r")
