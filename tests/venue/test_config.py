"""Config: the shipped default loads; every kind of mistake names its field."""
from __future__ import annotations

import pytest

from mm_core.venue.config import load_config, parse_config
from mm_core.venue.errors import ConfigError
from mm_core.venue.process import build_config, parse_duration


def test_default_config_has_pair_option_and_tiers():
    config = load_config()
    names = [x.name for x in config.listings()]
    assert names[:3] == ["ACME", "BOLT", "CHIP"] and "ACME1C" in names
    assert config.pairs[0].a == "ACME" and 0 < config.pairs[0].correlation < 1
    assert any(s.half_penny for s in config.symbols)
    assert config.options[0].underlying == "ACME" and config.options[0].right == "C"
    assert config.venue.host == "127.0.0.1"


def doc_with(**edits):
    base = {"symbols": [{"name": "ACME", "id": 1, "reference_price": 1000000,
                         "half_penny": False, "volatility": 0.3}]}
    for key, value in edits.items():
        base[key] = value
    return base


@pytest.mark.parametrize("doc, field", [
    (doc_with(symbols=[{"name": "ACME", "id": 1, "reference_price": 10.5, "half_penny": False,
                        "volatility": 0.3}]), "symbols[0].reference_price"),
    (doc_with(symbols=[{"name": "TOOLONGNAME", "id": 1, "reference_price": 1, "half_penny": False,
                        "volatility": 0.3}]), "symbols[0].name"),
    (doc_with(symbols=[{"name": "ACME", "id": 1, "reference_price": 1, "half_penny": False}]),
     "symbols[0].volatility"),
    (doc_with(venue={"host": "0.0.0.0"}), "venue.host"),
    (doc_with(venue={"ouch_port": 70000}), "venue.ouch_port"),
    (doc_with(venue={"heartbeat_timout": 3}), "venue.heartbeat_timout"),
    (doc_with(venue={"login_timeout": 0}), "venue.login_timeout"),
    (doc_with(venue={"duration": 1e300}), "venue.duration"),          # finite, but "for ever"
    (doc_with(venue={"duration": 86400.5}), "venue.duration"),
    (doc_with(venue={"heartbeat_timeout": 1e300}), "venue.heartbeat_timeout"),
    (doc_with(venue={"login_cooloff": 86401}), "venue.login_cooloff"),
    (doc_with(pairs=[{"a": "ACME", "b": "NOPE", "correlation": 0.5}]), "pairs[0].b"),
    (doc_with(pairs=[{"a": "ACME", "b": "ACME", "correlation": 2.0}]), "pairs[0].correlation"),
    (doc_with(options=[{"name": "O1", "id": 9, "underlying": "ACME", "strike": 1, "expiry_days": 1,
                        "right": "X", "implied_vol": 0.2, "half_penny": False}]), "options[0].right"),
    (doc_with(options=[{"name": "O1", "id": 9, "underlying": "ACME", "strike": 1, "expiry_days": 7301,
                        "right": "C", "implied_vol": 0.2, "half_penny": False}]), "options[0].expiry_days"),
    (doc_with(users=[{"username": "U1", "password": "p", "firm": "F"}] * 2), "users.username"),
    (doc_with(symbols=[]), "symbols"),
    (doc_with(flow={"lot": 0}), "flow.lot"),
    (doc_with(extra={}), "extra"),
])
def test_bad_config_names_the_field(doc, field):
    with pytest.raises(ConfigError) as info:
        parse_config(doc)
    assert info.value.field == field, str(info.value)


def test_bad_file_and_overrides(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[venue\nseed = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    config = build_config(None, "2m", 11, ouch_port=0, itch_port=None)
    assert config.venue.duration == 120.0 and config.venue.seed == 11
    with pytest.raises(ConfigError) as info:
        load_config().with_venue(session="ELEVENCHARS")
    assert info.value.field == "venue.session"


@pytest.mark.parametrize("text, seconds", [("60s", 60), ("2m", 120), ("500ms", 0.5), ("1h", 3600),
                                           ("1.5", 1.5), ("24h", 86400), ("86400", 86400)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0s", "-1s", "5 days", "s", "inf", "nan", "1e3"])
def test_parse_duration_rejects(text):
    with pytest.raises(ConfigError):
        parse_duration(text)


@pytest.mark.parametrize("text", ["9" * 400, "9" * 400 + "ms", "86400.001s", "25h", "1441m"])
def test_parse_duration_rejects_more_than_a_day_and_infinity(text):
    with pytest.raises(ConfigError, match=r"longer than the most a run may last, 86400 s \(24 h\)") as info:
        parse_duration(text)
    assert info.value.field == "duration" and len(str(info.value)) < 200


def test_parse_duration_takes_a_tighter_maximum():
    assert parse_duration("2h", maximum_s=7200) == 7200
    with pytest.raises(ConfigError, match="7200 s"):
        parse_duration("2.5h", maximum_s=7200)


@pytest.mark.parametrize("row, value, field", [
    ("symbols", 5_000_000_000, "symbols[0].reference_price"),     # fits no OUCH/ITCH uint32
    ("symbols", 1_999_999_901, "symbols[0].reference_price"),     # one past $199,999.99
    ("options", 2_000_000_000, "options[0].strike"),
])
def test_prices_above_the_wire_ceiling_are_a_config_error(row, value, field):
    symbol = {"name": "ACME", "id": 1, "reference_price": 1000000, "half_penny": False,
              "volatility": 0.3}
    option = {"name": "O1", "id": 9, "underlying": "ACME", "strike": 1000000, "expiry_days": 1,
              "right": "C", "implied_vol": 0.2, "half_penny": False}
    rows = {"symbols": symbol, "options": option}
    rows[row] = rows[row] | {"reference_price" if row == "symbols" else "strike": value}
    with pytest.raises(ConfigError) as info:
        parse_config(doc_with(symbols=[rows["symbols"]], options=[rows["options"]]))
    assert info.value.field == field
    ok = parse_config(doc_with(symbols=[symbol | {"reference_price": 1_999_999_900}]))
    assert ok.symbols[0].reference_price == 1_999_999_900


def test_a_day_is_the_longest_duration_a_config_may_give():
    assert parse_config(doc_with(venue={"duration": 86400.0})).venue.duration == 86400.0
