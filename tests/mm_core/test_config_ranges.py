"""Engine config values the engine cannot work with are refused when the document loads, with a
ConfigError naming the field and what is allowed: not at the first order of a session, not as an
engine that quietly never quotes. Also the shapes and ranges of the symbols tables."""
import re

import pytest

from mm_core.config import ConfigError, EngineConfig, symbols_from_toml
from mm_core.engine import Engine
from tests.mm_core.wire import SYMBOLS, SYMBOLS_TEXT, gateway


@pytest.mark.parametrize("text, message", [
    # ids go into ORDER_SENT's uint32 fields at the first order
    ("[engine]\nalgo_id = -1\n", "engine.algo_id: must be within 0..4294967295"),
    ("[engine]\nalgo_id = 4294967296\n", "engine.algo_id: must be within 0..4294967295"),
    ("[engine]\ndesk_id = -2\n", "engine.desk_id"),
    ("[engine]\ntrader_id = 99999999999\n", "engine.trader_id"),
    ("[engine]\nclient_id = -1\n", "engine.client_id"),
    # wire text: the OUCH Firm field and the order token prefix
    ('[engine]\nfirm = "TOOLONGFIRM"\n', "engine.firm: must be 1-4 printable ASCII"),
    ('[engine]\nfirm = ""\n', "engine.firm"),
    ('[engine]\nfirm = "M\u00c9CO"\n', "engine.firm"),
    ('[engine]\nsession_prefix = ""\n', "engine.session_prefix: must be 1-8 ASCII letters or digits"),
    ('[engine]\nsession_prefix = "A-B"\n', "engine.session_prefix"),
    # rates, weights, periods
    ("[engine]\nvol_halflife_ns = 0\n", r"engine.vol_halflife_ns: must be > 0"),
    ("[engine]\nvol_halflife_ns = 1.5\n", "engine.vol_halflife_ns"),
    ("[engine]\nmin_depth_ticks = -5.0\n", "engine.min_depth_ticks: must be >= 0"),
    ("[engine]\nadverse_rate_weight = -1.0\n", "engine.adverse_rate_weight"),
    ("[engine]\ntoxicity_weight = -0.1\n", "engine.toxicity_weight"),
    ("[engine]\nrerequest_timeout_ns = 0\n", "engine.rerequest_timeout_ns: must be > 0"),
    ("[engine]\nrerequest_max_count = 0\n", "engine.rerequest_max_count: must be an integer 1..65534"),
    ("[engine]\nrerequest_max_count = 65535\n", "engine.rerequest_max_count"),
    ("[engine]\nrerequest_max_count = 2.5\n", "engine.rerequest_max_count"),
    ("[engine]\ngap_buffer_packets = -1\n", "engine.gap_buffer_packets: must be an integer >= 0"),
    ("[engine]\ngap_buffer_packets = 1.5\n", "engine.gap_buffer_packets"),
    ("[engine]\ngap_buffer_bytes = -1\n", "engine.gap_buffer_bytes: must be an integer >= 0"),
    ("[engine]\nrisk_refresh_ns = 0\n", "engine.risk_refresh_ns"),
    ("[engine]\nmetrics_interval_ns = 0\n", "engine.metrics_interval_ns: must be > 0"),
    ("[engine]\nmarkout_horizons_ns = [-1]\n", "engine.markout_horizons_ns: must be one or more positive"),
    ("[engine]\nmarkout_horizons_ns = []\n", "engine.markout_horizons_ns"),
    ("[engine]\nmarkout_horizons_ns = [5, 5]\n", "engine.markout_horizons_ns"),
    ("[engine]\nadverse_horizon = 3\n", "engine.adverse_horizon: must be an index into markout_horizons_ns"),
    ("[engine]\ndeny_backoff_ns = -1\n", "engine.deny_backoff_ns: must be >= 0"),
    ("[engine]\nprune_after_ns = -1\n", "engine.prune_after_ns: must be >= 0"),
    # the fair value model: choices, table shape, EWMA weights
    ('[fair_value]\nbase = "xyz"\n', 'fair_value.base: must be one of "micro", "mid", "weighted"'),
    ("[fair_value]\nn_imb = 0\n", "fair_value.n_imb: must be within 2..16"),
    ("[fair_value]\nn_imb = 1000\n", "fair_value.n_imb"),
    ("[fair_value]\nn_spread = -1\n", "fair_value.n_spread: must be within 1..16"),
    ("[fair_value]\ncalibrate_every = -1\n", "fair_value.calibrate_every: must be >= 0"),
    ("[fair_value]\nimbalance_levels = 0\n", "fair_value.imbalance_levels: must be within 1..100"),
    ("[fair_value]\nlevel_decay = 0.0\n", "fair_value.level_decay"),
    ("[fair_value]\nw_imbalance = -0.2\n", "fair_value.w_imbalance"),
    ("[fair_value]\nw_flow = -0.2\n", "fair_value.w_flow"),
    ("[fair_value]\nflow_alpha = 0.0\n", "fair_value.flow_alpha"),
    ("[fair_value]\nlead_alpha = 2.0\n", "fair_value.lead_alpha"),
    # the guard and the hedger's own parameters
    ("[guard]\nfill_spike_count = 0\n", "guard: fill_spike_count must be >= 1"),
    ("[guard]\nfill_window_ns = 0\n", "guard: fill_window_ns must be within 1..86400e9"),
    ("[guard]\ncooldown_ns = -1\n", "guard: cooldown_ns must be within 0..86400e9"),
    ("[guard]\nmarkout_threshold = -1.0\n", "guard: markout_threshold must be >= 0"),
    ("[guard]\ncooldown_ns = 9223372036854775807\n", "guard: cooldown_ns must be within 0..86400e9"),
    ("[guard]\nprints_window = 100001\n", "guard: prints_window must be <= 100000"),
    ("[guard]\nvpin_buckets = 100001\n", "guard: vpin_buckets"),
    ("[guard]\nmarkout_window = 100001\n", "guard: markout_window"),
    ("[hedge]\nmin_samples = -1\n", "hedge: min_samples must be >= 0"),
    # integers past TOML's 64-bit range (tomllib reads them) would overflow the C kernels
    ("[fair_value]\ncalibrate_every = 99999999999999999999\n", "fair_value.calibrate_every: must be an integer TOML"),
    ("[skew]\nlot = -99999999999999999999\n", "skew.lot: must be an integer TOML allows"),
    ("[engine]\nmarkout_horizons_ns = [99999999999999999999]\n", "engine.markout_horizons_ns: every item"),
    ("[fair_value]\nimbalance_levels = 9999999999\n", "fair_value.imbalance_levels: must be within 1..100"),
    # shapes
    ("engine = 5\n", r"engine: must be a table \(\[engine\]\)"),
    ("fair_value = 5\n", "fair_value: must be a table"),
])
def test_a_value_the_engine_cannot_use_is_a_config_error_naming_it(text, message):
    with pytest.raises(ConfigError, match=message):
        EngineConfig.from_toml(text)


@pytest.mark.parametrize("text", [
    "[engine]\nalgo_id = 0\ndesk_id = 4294967295\ntrader_id = 7\nclient_id = 0\n",
    '[engine]\nfirm = "AB"\nsession_prefix = "Q1"\nvol_halflife_ns = 1\nmin_depth_ticks = 0.0\n',
    "[engine]\nmarkout_horizons_ns = [1000]\nadverse_horizon = 0\ndeny_backoff_ns = 0\n",
    '[fair_value]\nbase = "weighted"\nn_imb = 16\nn_spread = 16\ncalibrate_every = 0\nw_flow = 0.0\n',
    "[guard]\nfill_spike_count = 1\ncooldown_ns = 0\nmarkout_threshold = 0.0\n[hedge]\nmin_samples = 0\n",
    "[guard]\nprints_window = 100000\nfill_window_ns = 86400000000000\n[fair_value]\nimbalance_levels = 100\n",
])
def test_edge_values_that_work_are_accepted_and_build_an_engine(text):
    Engine(EngineConfig.from_toml(text), SYMBOLS, gateway())


def test_the_defaults_pass_their_own_rules():
    assert EngineConfig() == EngineConfig.from_toml("")


def _symbols(extra: str) -> str:
    return '[[symbols]]\nname = "A"\nid = 1\nreference_price = 100000\n' + extra


@pytest.mark.parametrize("text, message", [
    ("symbols = 5\n", "symbols: must be an array of tables"),
    ("symbols = [1, 2]\n", "symbols: must be an array of tables"),
    ('[symbols]\nname = "A"\n', "symbols: must be an array of tables"),
    ("options = 3\n" + _symbols(""), "options: must be an array of tables"),
    ('pairs = ["A"]\n' + _symbols(""), "pairs: must be an array of tables"),
    ('[[symbols]]\nname = "A"\nid = 1\nreference_price = 100000\nvolatility = -0.5\n',
     r"symbols\[0\].volatility: must be within \[0, 10\]"),
    ('[[symbols]]\nname = "A"\nid = 1\nreference_price = 100000\nvolatility = nan\n', r"symbols\[0\].volatility"),
    (_symbols('[[symbols]]\nname = "B"\nid = 2\nreference_price = 5\n[[pairs]]\na = "A"\nb = "B"\n'
              "correlation = 5.0\n"), r"pairs\[0\].correlation: must be within \[-1, 1\]"),
    (_symbols('[[symbols]]\nname = "B"\nid = 2\nreference_price = 5\n[[pairs]]\na = "A"\nb = "B"\n'
              "correlation = nan\n"), r"pairs\[0\].correlation"),
    (_symbols('[[options]]\nname = "AC"\nid = 9\nunderlying = "A"\nstrike = 100000\nexpiry_days = 30.0\n'
              'right = "C"\nimplied_vol = 0.0\n'), r"options\[0\].implied_vol: must be within \(0, 10\]"),
    (_symbols('[[options]]\nname = "AC"\nid = 9\nunderlying = "A"\nstrike = 0\nexpiry_days = 30.0\n'
              'right = "C"\nimplied_vol = 0.3\n'), r"options\[0\].strike: must be > 0"),
    # an expiry past MAX_EXPIRY_DAYS overflowed the gateway's revaluation (1e300 days: the engine)
    (_symbols('[[options]]\nname = "AC"\nid = 9\nunderlying = "A"\nstrike = 100000\nexpiry_days = 7300.5\n'
              'right = "C"\nimplied_vol = 0.3\n'), r"options\[0\].expiry_days: must be within \(0, 7300\], not 7300.5"),
    (_symbols('[[options]]\nname = "AC"\nid = 9\nunderlying = "A"\nstrike = 100000\nexpiry_days = 1e300\n'
              'right = "C"\nimplied_vol = 0.3\n'), r"options\[0\].expiry_days: must be within \(0, 7300\]"),
    (_symbols('[[options]]\nname = "AC"\nid = 9\nunderlying = "A"\nstrike = 100000\nexpiry_days = -1\n'
              'right = "C"\nimplied_vol = 0.3\n'), r"options\[0\].expiry_days: must be within \(0, 7300\]"),
])
def test_malformed_symbols_tables_are_config_errors(text, message):
    with pytest.raises(ConfigError, match=message):
        symbols_from_toml(text)


def test_the_bundled_symbols_file_passes_the_new_checks():
    symbols = symbols_from_toml(SYMBOLS_TEXT)
    written = float(re.search(r"^correlation\s*=\s*([-0-9.]+)", SYMBOLS_TEXT, re.MULTILINE).group(1))
    assert [p.correlation for p in symbols.pairs] == [written]
    assert all(0 < s.volatility <= 10 for s in symbols.symbols)
