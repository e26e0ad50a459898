"""The gateway as a running process: the command line (``cli``), serving with its workers and signals
(``server``, on ``listening`` and ``tls``), the PID file ``reload`` finds it by (``pidfile``),
reloading the config (``reload``) and the start-up lines (``greeting``)."""
