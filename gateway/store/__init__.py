"""Where records, balances and accounts live: the ``Store`` protocol (``base``), its backends
(``sqlite``, ``redis``, chosen by name in ``backends``) and the account cache in front of them."""
