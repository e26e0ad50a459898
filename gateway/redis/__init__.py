"""The one Redis client the parts share (``client``): its automatic pipelining (``batch``), outage
detection (``health``) and writes the replicas confirm (``replicas``). ``import redis`` in here is
absolute, so it is redis-py, never this package."""
