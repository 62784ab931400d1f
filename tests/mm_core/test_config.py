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
