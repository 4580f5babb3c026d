"""Settings come from the environment, with the names ARCHITECTURE.md fixes."""

from pathlib import Path

from app.settings import Settings


def test_environment_names(monkeypatch) -> None:
    monkeypatch.setenv("TOURLINE_DATA_DIR", "/tmp/tourline-x")
    monkeypatch.setenv("TOURLINE_PUBLIC_URL", "https://abc.example.com")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "secret")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("DATABASE_URL", "postgres://u@h/db")
    s = Settings()
    assert s.data_dir == Path("/tmp/tourline-x")
    assert s.public_url == "https://abc.example.com"
    assert s.twilio_auth_token == "secret"
    assert s.llm_enabled
    assert s.resolved_database_url == "postgresql+psycopg://u@h/db"


def test_offline_defaults(monkeypatch, tmp_path) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    s = Settings(data_dir=tmp_path)
    assert not s.llm_enabled
    assert s.resolved_database_url == f"sqlite:///{tmp_path.resolve()}/tourline.db"
