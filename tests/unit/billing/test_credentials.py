"""Processor credentials sealed with MultiFernet, and key rotation."""
import pytest
from cryptography.fernet import InvalidToken

from services.billing import domain
from services.billing.credentials import CredentialBox, CredentialKeysMissing, hint, new_key, parse_keys

CREDENTIALS = {"api_key": "$aact_hmlg_000MzkwODA2MWY2OGM3MWRlMDU2NWM3MzJlNzZmNGZhZGY6Ojk5", "webhook_token": "Ab" * 20}


def test_sealed_credentials_show_nothing_and_open_with_the_key():
    old = new_key()
    sealed = CredentialBox(old).seal(CREDENTIALS)
    assert CREDENTIALS["api_key"] not in sealed and CREDENTIALS["api_key"][11:20] not in sealed
    assert CredentialBox(old).open(sealed) == CREDENTIALS
    with pytest.raises(InvalidToken):
        CredentialBox(new_key()).open(sealed)


def test_rotation_seals_with_the_first_key_and_the_old_key_alone_then_opens_nothing():
    old, new = new_key(), new_key()
    sealed = CredentialBox(old).seal(CREDENTIALS)
    during = CredentialBox(f"{new},{old}")
    assert during.open(sealed) == CREDENTIALS  # both keys open while the rows are re-sealed
    resealed = during.reseal(sealed)
    assert CredentialBox(new).open(resealed) == CREDENTIALS
    with pytest.raises(InvalidToken):
        CredentialBox(old).open(resealed)


def test_keys_that_are_not_fernet_keys_are_refused_without_being_shown():
    with pytest.raises(ValueError) as refused:
        parse_keys(f"{new_key()}, not-a-key-at-all")
    assert "BILLING_CREDENTIAL_KEYS" in str(refused.value) and "not-a-key" not in str(refused.value)


def test_without_keys_nothing_is_sealed_or_opened():
    with pytest.raises(CredentialKeysMissing):
        CredentialBox("").seal(CREDENTIALS)


def test_only_the_last_four_characters_are_ever_shown():
    assert hint(CREDENTIALS["api_key"]) == CREDENTIALS["api_key"][-4:] and hint(None) == ""


def test_webhook_tokens_fit_asaas_rules_and_compare_in_constant_time():
    tokens = {domain.new_webhook_token() for _ in range(50)}
    assert len(tokens) == 50
    for token in tokens:
        assert 32 <= len(token) <= 255 and token.isalpha() and not domain.REPEATED_RUN.search(token)
    token = tokens.pop()
    assert domain.webhook_token_matches(token, token)
    assert not domain.webhook_token_matches(token, token[:-1]) and not domain.webhook_token_matches(token, None)
    assert not domain.webhook_token_matches(None, "") and not domain.webhook_token_matches("", "")


@pytest.mark.parametrize("account, problems", [
    ({"processor": "asaas", "api_key": None}, {"api_key"}),
    ({"processor": "asaas", "api_key": "$aact_x"}, set()),
    ({"processor": "sandbox", "api_key": "k"}, {"api_key"}),
    ({"processor": "sandbox", "webhook_token": "t"}, {"webhook_token"}),
    ({"processor": "sandbox"}, set()),
])
def test_what_each_processor_needs_of_an_account(account, problems):
    assert set(domain.processor_account_problems(account)) == problems
