"""What the routing decided: how many numbers each route sent to each provider, as the
``smsedge_route_decisions_total`` counter for Prometheus and the same counts in memory for ``/status``
(this process, since it started).

Kept by the app across reloads, so a reload that edits the routes does not reset what was seen.
"""

from __future__ import annotations

from prometheus_client import Counter

__all__ = ["RoutingTally"]


class RoutingTally:
    def __init__(self, counter: Counter) -> None:
        self._counter = counter
        self._children: dict[tuple[str, str], Counter] = {}  # looked up once per label pair
        #: Numbers taken, by (route, provider).
        self.counts: dict[tuple[str, str], int] = {}

    def add(self, provider: str, routes: list[str]) -> None:
        """Numbers sent to ``provider``, each named by the route that chose it."""
        first = routes[0]
        if routes.count(first) == len(routes):  # the usual case: one route for all of them
            self._add(first, provider, len(routes))
            return
        for route in dict.fromkeys(routes):
            self._add(route, provider, routes.count(route))

    def _add(self, route: str, provider: str, numbers: int) -> None:
        pair = route, provider
        child = self._children.get(pair)
        if child is None:
            child = self._children[pair] = self._counter.labels(route, provider)
        child.inc(numbers)
        self.counts[pair] = self.counts.get(pair, 0) + numbers

    def taken(self, route: str) -> dict[str, int]:
        """What one route sent, by provider."""
        return {provider: n for (name, provider), n in self.counts.items() if name == route}
