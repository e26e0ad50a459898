"""The admin API sub-app at /admin/api (``app``): accounts for operators, through the account service
the ``accounts`` CLI shares (``gateway.accounts.service``, its checks in ``gateway.accounts.rules``)."""
