"""Outgoing e-mail (and, later, merchant webhooks)."""
