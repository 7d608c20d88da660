"""Settings: defaults, secrets masked, unsafe combinations refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import SettingsError, load
from core.db import normalise_url


def test_defaults(tmp_path: Path) -> None:
    settings = load({}, env_file=tmp_path / "none")
    assert (settings.host, settings.port, settings.database_url) == ("127.0.0.1", 3978, None)
    assert settings.local_mode and settings.timezone == "Europe/London"


def test_env_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("PORT=4000\nOPSROOM_SUPERVISORS=AAA, bbb\nMicrosoftAppPassword=hunter2\n")
    settings = load({"PORT": "5000"}, env_file=env)
    assert settings.port == 5000
    assert settings.supervisors == frozenset({"aaa", "bbb"})
    assert "hunter2" not in repr(settings) and "app_password='***'" in repr(settings)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"OPSROOM_ENV": "production", "OPSROOM_HOME_TENANT_ID": "t"}, "needs MicrosoftAppId"),
        ({"OPSROOM_ENV": "production", "MicrosoftAppId": "x"}, "needs OPSROOM_HOME_TENANT_ID"),
        ({"OPSROOM_ENV": "staging"}, "must be 'local' or 'production'"),
        ({"PORT": "eighty"}, "PORT must be a whole number"),
        ({"MicrosoftAppType": "Other"}, "MicrosoftAppType must be"),
    ],
)
def test_bad_settings_are_refused_with_the_setting_named(
    tmp_path: Path, environ: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        load(environ, env_file=tmp_path / "none")


def test_database_urls_get_their_driver() -> None:
    assert normalise_url(None) == "sqlite+pysqlite:///var/opsroom.db"
    assert normalise_url("sqlite:///x/y.db") == "sqlite+pysqlite:///x/y.db"
    assert normalise_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("postgres://u:p@h:5433/db") == "postgresql+psycopg://u:p@h:5433/db"
    with pytest.raises(ValueError, match="unsupported"):
        normalise_url("mysql://u@h/db")
