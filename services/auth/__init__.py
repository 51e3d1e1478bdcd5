"""Login links, sessions and (later) SSO tickets and API keys."""
