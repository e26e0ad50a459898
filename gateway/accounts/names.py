"""Account names: what one may hold, and when two are one name.

A name is shown as it was given, to operators (admin API and console, CLI, audit log, log lines).
So it is trimmed, and refused when it holds a control or format character (a newline forges a log
line; a direction override or a zero-width space makes one name read as another) or a run of 7 or
more digits (what a phone number could be: it would be shown masked, ``audit-128****8604``, and
no longer name its account). Two names that read the same once NFKC-normalised and case-folded
(``shop``, ``SHOP``, ``ｓｈｏｐ``) are one name: the account service refuses the second as taken.
The config's accounts, ``accounts create`` and the admin API all check names here.
"""

from __future__ import annotations

import re
import unicodedata

from gateway.phones import scrub

__all__ = ["MAX_NAME_LENGTH", "checked_name", "name_key"]

MAX_NAME_LENGTH = 64
# Control, format, surrogate, private-use and unassigned characters, line and paragraph separators.
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_DIGIT_RUN = re.compile(r"\d{7}")


def name_key(name: str) -> str:
    """What a name reads as: two names with one key are one name."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


def checked_name(value: str) -> str:
    """``value`` trimmed, or :class:`ValueError` saying what a name may not be."""
    name = value.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"a name of 1-{MAX_NAME_LENGTH} characters")
    if any(unicodedata.category(char) in _HIDDEN for char in name):
        raise ValueError(
            "may not hold control or format characters (line breaks, direction marks, zero-width spaces)"
        )
    if _DIGIT_RUN.search(name_key(name)) or scrub(name) != name:
        raise ValueError(
            "may not hold a run of 7 or more digits: it would be shown masked, as a phone number is"
        )
    return name
