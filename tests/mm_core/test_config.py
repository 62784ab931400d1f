import pytest

from mm_core.config import ConfigError, EngineConfig, symbols_from_toml
from tests.mm_core.wire import SYMBOLS_TEXT


def test_default_symbols_file_reads():
    s = symbols_from_toml(SYMBOLS_TEXT)
    acme = s.by_name("ACME")
    assert (acme.id, acme.reference_price, acme.half_penny) == (1, 1_000_000, False)
    assert s.by_name("BOLT").half_penny and s.by_name("ACME1C").is_option
    assert [(p.a, p.b) for p in s.pairs] == [(1, 2)]
    assert s.n_slots == 103
    # 60% annual vol on $100: 0.6 · 1e6 / sqrt(252 · 6.5 · 3600) price4 per sqrt(second)
    assert acme.prior_sigma == pytest.approx(247.08, abs=0.01)


@pytest.mark.parametrize("text, field", [
    ('[[symbols]]\nname = "A"\nid = 0\nreference_price = 1\n', "symbols[0].id"),
    ('[[symbols]]\nname = "A"\nid = 1\n', "symbols[0].reference_price"),
    ('[[symbols]]\nname = "A"\nid = 1\nreference_price = "x"\n', "symbols[0].reference_price"),
    ('[[symbols]]\nname = "A"\nid = 1\nreference_price = 5\n[[pairs]]\na = "A"\nb = "Z"\n', "pairs[0]"),
    ("not toml [", "not TOML"),
])
def test_bad_symbols_name_the_field(text, field):
    with pytest.raises(ConfigError, match=field.replace("[", r"\[").replace("]", r"\]")):
        symbols_from_toml(text)


def test_engine_config_sections_and_errors():
    cfg = EngineConfig.from_toml('[engine]\nquote_size = 300\nquoted = ["ACME"]\n'
                                 '[skew]\nmodel = "as"\ngamma = 0.2\n[guard]\nvpin_buckets = 5\n')
    assert cfg.quote_size == 300 and cfg.quoted == ("ACME",)
    assert cfg.skew.model == "as" and cfg.skew.gamma == 0.2 and cfg.guard.vpin_buckets == 5
    for text, field in [("[engine]\nquote_sise = 1\n", "engine.quote_sise"),
                        ("[engine]\nquote_size = 1.5\n", "engine.quote_size"),
                        ('[skew]\nmodel = "xyz"\n', "skew"),
                        ("[risk]\n", "risk"),
                        ("[engine]\nquoted = [1]\n", "engine.quoted"),
                        ("[fair_value]\nlead_min_samples = -1\n", "fair_value: lead_min_samples"),
                        (f"[fair_value]\nlead_min_samples = {2**70}\n", "fair_value.lead_min_samples")]:
        with pytest.raises(ConfigError, match=field):
            EngineConfig.from_toml(text)


def test_micro_price_table_from_config_reaches_fair_value():
    from mm_core.engine import Engine
    from tests.mm_core.wire import SYMBOLS, gateway
    cfg = EngineConfig.from_toml("[fair_value]\nn_imb = 2\nn_spread = 1\ncalibrate_every = 0\n"
                                 "w_imbalance = 0.0\nw_flow = 0.0\nmicro_table = [-0.25, 0.25]\n")
    engine = Engine(cfg, SYMBOLS, gateway())
    # imbalance 0.9 -> upper bucket: mid 1000000 + 0.25 tick of 100
    assert engine.fv.update(1, 999_950, 900, 1_000_050, 100) == 1_000_025.0
    with pytest.raises(ConfigError, match="micro_table"):
        EngineConfig.from_toml("[fair_value]\nmicro_table = [1, 2, 3]\n")


@pytest.mark.parametrize("text, field", [
    ("[engine]\nquote_size = 0\n", "quote_size"),
    ("[engine]\nquote_size = 50\n", "quote_size"),                 # under one lot: never quotes
    ("[engine]\nquote_size = 4294967300\n", "quote_size"),         # past OUCH's u32 shares
    ("[engine]\nposition_limit = 0\n", "position_limit"),
    ("[engine]\nsize_skew = 1.5\n", "size_skew"),
    ("[engine]\nwithdraw_at = 0.0\n", "withdraw_at"),
    ("[engine]\nwithdraw_at = 1.2\n", "withdraw_at"),
    ("[engine]\nvol_halflife_ns = -1\n", "vol_halflife_ns"),
    ("[engine]\nack_timeout_ns = -1\n", "ack_timeout_ns"),
    ("[engine]\nack_timeout_ns = 0\n", "ack_timeout_ns"),
    ("[engine]\nprune_after_ns = -1\n", "prune_after_ns"),
    ("[engine]\nmarkout_horizons_ns = []\n", "markout_horizons_ns"),
    ("[engine]\nmarkout_horizons_ns = [5, 5]\n", "markout_horizons_ns"),
    ("[engine]\nadverse_horizon = 3\n", "adverse_horizon"),
    ('[engine]\nsession_prefix = "MÜ"\n', "session_prefix"),
    ('[engine]\nsession_prefix = "TOOLONG12"\n', "session_prefix"),
    ('[engine]\nfirm = "FIRMA"\n', "firm"),
    ('[engine]\nfirm = "FÜR"\n', "firm"),
    ("[hedge]\nbeta_alpha = 0.0\n", "hedge: beta_alpha"),
    ("[hedge]\nhold_ns = -5\n", "hedge: hold_ns"),
    ("[hedge]\ncross_ticks = -3\n", "hedge: cross_ticks"),
    # a band under one lot rebalances every one-lot move of the target (a one-tick wobble)
    ("[hedge]\nband = 50\n", "hedge: band must be >= lot"),
    ("[hedge]\nlot = 200\n", "hedge: band must be >= lot"),
    # a prior the regression starts from that sizes hedges past any position (and past OUCH)
    ("[hedge]\nbeta_prior = 1e7\n", "hedge: beta_prior must be within"),
    ("[hedge]\nmax_beta = 1e7\n", "hedge: max_beta must be within"),
])
def test_engine_values_the_engine_cannot_work_with_are_config_errors_naming_the_field(text, field):
    """Each of these used to load, then fail at the first book or at Engine(), or never quote."""
    with pytest.raises(ConfigError, match=field):
        EngineConfig.from_toml(text)


def test_the_default_config_and_a_one_lot_quote_are_valid():
    assert EngineConfig.from_toml("") == EngineConfig()
    assert EngineConfig.from_toml("[engine]\nquote_size = 100\nposition_limit = 100\n").quote_size == 100


def test_a_symbol_name_must_fit_the_wire_stock_field():
    for name in ("ÄCME", "TOOLONGNM", "AC "):
        with pytest.raises(ConfigError, match=r"symbols\[0\]\.name"):
            symbols_from_toml(f'[[symbols]]\nname = "{name}"\nid = 1\nreference_price = 5\n')
