"""The status view: what ``GET /status`` shows of this process. The send path feeds it in one call
per delivery (``view``), which keeps the recent calls per carrier (``carrier_stats``), the last 30
minutes (``timeline``, drawn by ``charts``) and what the routing chose (``routing_tally``); ``page``
serves it, aggregates only."""
