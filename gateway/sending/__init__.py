"""Sending, the core of the gateway: ``model`` (its types), ``routing`` (backends, by ``routing_rules``),
``windows`` (per-number limits), ``dispatch`` (carrier calls: batches, retries, failover, ``circuit``
breakers; what each delivery did goes to ``gateway.status``) and ``sender`` (charge, record, call,
settle; ``build_sender`` wires it)."""
