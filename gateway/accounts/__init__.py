"""Accounts: making them and their secrets (``creation``, ``credentials``), what a name and a field
may be (``names``, ``rules``), the one service every change goes through, from the admin API, the
``accounts`` CLI and the config (``service``), and the accounts the config lists (``listed``)."""
