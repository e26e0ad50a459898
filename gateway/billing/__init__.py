"""Billing as the carrier bills: segments, sealed numbers, the status pull and usage."""
