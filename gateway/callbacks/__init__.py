"""Delivery callbacks (docs/callbacks.md): a POST to the sending team's URL for each status change
of its messages. Where to (``urls``: the account's prefixes rule), what (``events``: the body, built
from the outbox the stores keep), signed so the receiver knows it came from us (``signing``),
retried on a schedule for 24 h (``schedule``) by the deliverer every worker runs (``deliverer``),
one receiver kept from delaying another (``hosts``), the HTTP exchanges themselves in a process of
their own so the send path's event loop is spared them (``poster``, ``poster_process``)."""
