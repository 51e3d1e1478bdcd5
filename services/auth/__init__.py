"""Login links, sessions, merchants' SSO tickets and API keys."""
