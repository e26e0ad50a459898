"""Delivery callbacks (docs/callbacks.md): a POST to the sending team's URL for each status change of
its messages, signed so the receiver knows it came from us (``signing``), each event of the record's
outbox (``events``), retried on a schedule for 24 h (``schedule``) by the deliverer every worker
runs (``deliverer``)."""
