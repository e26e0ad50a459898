"""What the routing decided: how many numbers each routing rule sent to each provider, as the
``smsedge_route_decisions_total`` counter for Prometheus and the same counts in memory for ``/status``
(this process, since it started).

Kept by the app across reloads, so a reload that edits the rules does not reset what was seen.
"""

from __future__ import annotations

from prometheus_client import Counter

__all__ = ["RoutingTally"]


class RoutingTally:
    def __init__(self, counter: Counter) -> None:
        self._counter = counter
        self._children: dict[tuple[str, str], Counter] = {}  # looked up once per label pair
        #: Numbers taken, by (rule, provider).
        self.counts: dict[tuple[str, str], int] = {}

    def add(self, provider: str, rules: list[str]) -> None:
        """Numbers sent to ``provider``, each named by the rule that chose it."""
        first = rules[0]
        if rules.count(first) == len(rules):  # the usual case: one rule for all of them
            self._add(first, provider, len(rules))
            return
        for rule in dict.fromkeys(rules):
            self._add(rule, provider, rules.count(rule))

    def _add(self, rule: str, provider: str, numbers: int) -> None:
        pair = rule, provider
        child = self._children.get(pair)
        if child is None:
            child = self._children[pair] = self._counter.labels(rule, provider)
        child.inc(numbers)
        self.counts[pair] = self.counts.get(pair, 0) + numbers

    def taken(self, rule: str) -> dict[str, int]:
        """What one routing rule sent, by provider."""
        return {provider: n for (name, provider), n in self.counts.items() if name == rule}
