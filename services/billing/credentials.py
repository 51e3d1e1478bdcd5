"""Processor credentials at rest: sealed with `cryptography`'s MultiFernet.

`BILLING_CREDENTIAL_KEYS` holds comma-separated Fernet keys: the first one seals,
every one opens, so a new key is put first, every row re-sealed with it
(`portalctl processor-accounts rotate-keys`), and only then the old key removed.
Credentials leave billing only as a hint: the last four characters at most.
"""
import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

KEYS_SETTING = "BILLING_CREDENTIAL_KEYS"
HINT_LENGTH = 4


class CredentialKeysMissing(Exception):
    """No usable key: credentials can be neither sealed nor opened."""


def parse_keys(setting):
    """The Fernet keys of the setting, in order; ValueError naming the setting (never a
    key) when one is not a Fernet key."""
    keys = [key.strip() for key in str(setting or "").split(",") if key.strip()]
    try:
        return [Fernet(key) for key in keys]
    except (ValueError, TypeError):
        raise ValueError(f"{KEYS_SETTING} holds a value that is not a Fernet key "
                         "(make one with `portalctl processor-accounts new-key`)") from None


def new_key():
    return Fernet.generate_key().decode("ascii")


def hint(secret):
    """What may be shown of a credential: its last four characters."""
    return (secret or "")[-HINT_LENGTH:]


class CredentialBox:
    """Seals and opens one account's credentials (a dict of strings)."""

    def __init__(self, setting):
        keys = parse_keys(setting)
        self._fernet = MultiFernet(keys) if keys else None

    def _keys(self):
        if self._fernet is None:
            raise CredentialKeysMissing(f"{KEYS_SETTING} is empty: processor credentials cannot be stored or read")
        return self._fernet

    def seal(self, credentials):
        return self._keys().encrypt(json.dumps(credentials, sort_keys=True).encode("utf-8")).decode("ascii")

    def open(self, sealed):
        """The credentials; InvalidToken when no key of the setting sealed them."""
        return json.loads(self._keys().decrypt(sealed.encode("ascii")))

    def reseal(self, sealed):
        """The same credentials sealed with the first key (MultiFernet.rotate)."""
        return self._keys().rotate(sealed.encode("ascii")).decode("ascii")


__all__ = ["CredentialBox", "CredentialKeysMissing", "InvalidToken", "hint", "new_key", "parse_keys"]
