"""Carrier plugins shipped with SMS Edge: one module per carrier."""
