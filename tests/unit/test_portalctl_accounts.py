"""portalctl's processor-account commands read secrets from a file or stdin, never argv."""
import io

import pytest

from portalctl import cli


def test_a_secret_comes_from_a_file_or_stdin(tmp_path):
    secret_file = tmp_path / "asaas-key"
    secret_file.write_text("$aact_hmlg_secret\n")
    assert cli.read_secret(str(secret_file), "API key") == "$aact_hmlg_secret"
    assert cli.read_secret("-", "API key", stdin=io.StringIO("$aact_hmlg_piped\n")) == "$aact_hmlg_piped"


def test_no_option_takes_the_secret_itself(capsys):
    with pytest.raises(SystemExit):
        cli.main(["processor-accounts", "set", "--merchant", "acme-cursos", "--processor", "asaas",
                  "--environment", "sandbox", "--api-key", "$aact_hmlg_secret", "--notify", "dona@acme.example"])
    assert "unrecognized arguments" in capsys.readouterr().err


def test_set_sends_the_secret_read_from_stdin_to_billing(monkeypatch, capsys):
    sent = {}

    class Billing:
        def set_processor_account(self, account):
            sent.update(account)
            return {**account, "id": "a-1", "api_key_hint": account["api_key"][-4:], "callback_url": "https://b/c"}

    class Proxy:
        billing = Billing()

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(cli, "cluster_rpc", lambda config: Proxy())
    monkeypatch.setattr("sys.stdin", io.StringIO("$aact_hmlg_fromstdin1234\n"))
    assert cli.main(["processor-accounts", "set", "--merchant", "acme-cursos", "--processor", "asaas",
                     "--environment", "sandbox", "--api-key-file", "-", "--notify", "dona@acme.example"]) == 0
    assert sent["api_key"] == "$aact_hmlg_fromstdin1234" and sent["webhook_token"] is None
    printed = capsys.readouterr().out
    assert "…1234" in printed and "fromstdin" not in printed
