"""Delivery callbacks: tell an account's own server when its messages were accepted, delivered or
failed (signed, durable, retried). Where to (``urls``), what (``events``), how (``deliverer``)."""
