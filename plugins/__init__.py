"""Carrier plugins shipped with SMS Edge: one package per carrier (the mock is one module).

Each is registered only by its entry point in the ``smsedge.providers`` group (setup.cfg); nothing
here lists them.
"""
