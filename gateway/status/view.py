"""What ``/status`` knows of this process's sending, and the one call that feeds it.

The send path tells the status view what each delivery did, once, when it is done
(:meth:`StatusView.delivered`): which provider the routing chose for which numbers and the carrier
calls that took (retries and failover included). The view hands that to its parts — the recent
calls per carrier, the per-minute timeline, the routing tally — so the send path knows none of them.
"""

from __future__ import annotations

from gateway.status.carrier_stats import CarrierStats
from gateway.status.routing_tally import RoutingTally
from gateway.status.timeline import Timeline

__all__ = ["CarrierCall", "StatusView"]

#: One upstream call: the backend, its outcome as the metrics label ("success", "refused", a failure
#: kind) and how long it took in seconds. A plain tuple: one is made per carrier call.
CarrierCall = tuple[str, str, float]


class StatusView:
    """The status page's figures: ``carriers``, ``timeline`` and ``routing``. One event loop feeds it."""

    __slots__ = ("carriers", "routing", "timeline")

    def __init__(self, carriers: CarrierStats, timeline: Timeline, routing: RoutingTally) -> None:
        self.carriers = carriers
        self.timeline = timeline
        self.routing = routing

    def delivered(self, provider: str, rules: list[str], calls: list[CarrierCall]) -> None:
        """Numbers routed to ``provider`` (``rules``: the routing rule that chose each) were delivered
        by ``calls``."""
        self.routing.add(provider, rules)
        for backend, outcome, seconds in calls:
            self.carriers.record(backend, outcome, seconds)
            self.timeline.carrier_call(seconds)
