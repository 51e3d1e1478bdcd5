"""Merchants, their catalog and self-service settings, contacts and subscriptions."""
