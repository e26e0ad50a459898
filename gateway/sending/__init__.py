"""Sending, the core of the gateway: ``model`` (its types), ``routing`` (which backends),
``windows`` (per-number limits), ``dispatch`` (carrier calls: batches, retries, failover, ``circuit``
breakers; what each delivery did goes to ``gateway.status``) and ``sender`` (charge, record, call,
settle; ``build_sender`` wires it)."""
