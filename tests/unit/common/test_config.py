from services.common.config import load_config


def test_defaults_work_without_any_environment(monkeypatch):
    for name in ("AMQP_URI", "MAIL_FROM", "PORTAL_BASE_URL", "RPC_TIMEOUT", "AUTH_DB_URL"):
        monkeypatch.delenv(name, raising=False)
    config = load_config()
    assert config["AMQP_URI"] == "amqp://guest:guest@localhost:5672/"
    assert config["MAIL_FROM"] == "Portal do Cliente <portal@localhost>"
    assert config["PORTAL_BASE_URL"] == "http://localhost:8000"
    assert config["RPC_TIMEOUT"] == 5
    assert config["AUTH_DB_URL"] == "sqlite:///var/auth.db"


def test_environment_overrides_each_value(monkeypatch):
    monkeypatch.setenv("MAIL_FROM", "Acme <no-reply@acme.example>")
    monkeypatch.setenv("RPC_TIMEOUT", "2.5")
    monkeypatch.setenv("PORTAL_BASE_URL", "https://portal.example.com")
    config = load_config()
    assert config["MAIL_FROM"] == "Acme <no-reply@acme.example>"
    assert config["RPC_TIMEOUT"] == 2.5
    assert config["PORTAL_BASE_URL"] == "https://portal.example.com"
