"""The session name and usernames are SoupBinTCP alphanumeric fields, and the venue also names
its session directory and log files after them: anything else (a "/" or "..", which would put
the logs outside log_dir) is a ConfigError naming the field, before any file is written."""
from __future__ import annotations

import pytest

from mm_core.venue.config import load_config, parse_config
from mm_core.venue.errors import ConfigError
from mm_core.venue.process import build_config

SYMBOLS = [{"name": "ACME", "id": 1, "reference_price": 1000000, "half_penny": False,
            "volatility": 0.3}]


@pytest.mark.parametrize("session", ["../ESCAPE", "a/b", "..", ".", "A B", "S\\1", "SESS-1"])
def test_a_session_name_that_is_not_alphanumeric_is_refused(tmp_path, session):
    with pytest.raises(ConfigError, match="venue.session"):
        build_config(None, log_dir=str(tmp_path / "logs"), session=session)
    assert not (tmp_path / "logs").exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("username", ["../x", "a/b", "..", "MM 1"])
def test_a_username_that_is_not_alphanumeric_is_refused(username):
    users = [{"username": username, "password": "pw", "firm": "MMCO"}]
    with pytest.raises(ConfigError, match=r"users\[0\].username"):
        parse_config({"symbols": SYMBOLS, "users": users})


def test_alphanumeric_names_and_a_generated_session_still_load():
    assert load_config().with_venue(session="TEST000001").venue.session == "TEST000001"
    assert load_config().with_venue(session="").venue.session == ""
    users = [{"username": "MM01", "password": "any pw!", "firm": "MMCO"}]
    assert parse_config({"symbols": SYMBOLS, "users": users}).users[0].username == "MM01"
