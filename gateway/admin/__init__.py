"""Accounts for operators: the one service the admin API and the ``accounts`` CLI share
(``service``, its checks in ``rules``), and the admin API sub-app at /admin/api (``app``)."""
