"""One send's segments, per carrier and kind of number: what its records are charged for.

A send is one template with one set of values, so its text differs only by carrier (a carrier may
have its own text or signature) and by whether a number is domestic (70/67 characters a segment
for every alphabet) or international (GSM-7 160/153, else 70/67): at most a few counts a send,
each counted once. A template without ``text`` is one segment, as before billing knew texts.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.billing.segments import count_segments
from gateway.billing.wording import render
from gateway.config.model import TemplateConfig
from gateway.phones import Phone

__all__ = ["SendSegments", "is_international"]

#: The carriers' home: their domestic rules apply to numbers of mainland China.
DOMESTIC_REGION = "CN"


def is_international(phone: Phone) -> bool:
    return phone.region != DOMESTIC_REGION


class SendSegments:
    """The segment counts of one send, counted on first use."""

    __slots__ = ("_counts", "_template", "_values", "_worded")

    def __init__(self, template: TemplateConfig, values: Mapping[str, str]) -> None:
        self._template = template
        self._values = values
        self._counts: dict[tuple[str, bool], int] = {}
        # Most templates say nothing of their text: then every count is 1, with no work.
        self._worded = template.text is not None or any(
            words.text is not None for words in template.carriers.values()
        )

    def of(self, backend: str, international: bool) -> int:
        """Segments of this send's text at ``backend`` for a number of that kind."""
        if not self._worded:
            return 1
        key = (backend, international)
        count = self._counts.get(key)
        if count is None:
            count = self._counts[key] = self._count(backend, international)
        return count

    def _count(self, backend: str, international: bool) -> int:
        words = self._template.words(backend)
        if words.text is None:
            return 1
        text = words.sign + render(words.text, self._template.params, self._values)
        return count_segments(text, international=international)
