import shutil

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from reports import refdata
from reports.errors import RefDataError
from tests.reports.journal_builder import FIXTURE_REFDATA


@pytest.fixture
def refdir(tmp_path):
    target = tmp_path / "ref"
    shutil.copytree(FIXTURE_REFDATA, target)
    return target


def test_fixture_reference_data_loads():
    ref = refdata.load(FIXTURE_REFDATA)
    assert ref.firm.lei == "984500MMAUDIT0000179"
    assert {i.symbol for i in ref.instruments.values()} >= {"AAPL", "MSFT"}
    assert "XNGS" in ref.active_mics
    assert list(ref.instrument_index(np.array([1, 4, 99]))) == [0, 3, -1]


def test_tick_table_per_symbol_and_price():
    ref = refdata.load(FIXTURE_REFDATA)
    ticks = ref.tick_at(np.array([1, 1, 2, 99]), np.array([9_999, 10_000, 20_000, 10_000]))
    assert list(ticks) == [1, 100, 50, 0]   # below $1: 0.0001; penny; half-penny; unknown symbol


def _edit(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize("file,old,new,message", [
    ("firm.toml", '984500MMAUDIT0000179"\nname', '984500MMAUDIT0000178"\nname', "MOD 97-10"),
    ("instruments.toml", '"US0378331005"', '"US0373831005"', "Luhn"),
    ("instruments.toml", 'mic = "XNGS"', 'mic = "XLON"', "registry"),
    ("instruments.toml", 'cfi = "ESVUFR"', 'cfi = "ES"', "ISO 10962"),
    ("instruments.toml", 'tick_table = "us_penny"', 'tick_table = "nope"', "not defined"),
    ("instruments.toml", "symbol_id = 2", "symbol_id = 1", "duplicate symbol_id"),
    ("parties.toml", 'code = "MMQUOTE01"', 'code = "MM QUOTE"', "alphanumerics"),
    ("parties.toml", 'code = "5493001KJTIIGC8Y1R12"', 'code = "5493001KJTIIGC8Y1R13"', "MOD 97-10"),
    ("firm.toml", "investment_firm = true", 'investment_firm = "yes"', "must be bool"),
    ("mics.toml", 'mic = "XNAS"', 'mic = "X-NAS"', "4 uppercase"),
    ("mics.toml", 'name = "NYSE ARCA"', 'name = "NYSE ARCA"\ncat_exchange = false', "no longer read"),
    ("mics.toml", 'name = "NYSE ARCA"', 'name = "NYSE ARCA"\ncat_reportr = false', "unknown key"),
    ("mics.toml", 'name = "NYSE ARCA"', 'name = "NYSE ARCA"\ncat_reporter = "no"', "true or false"),
    ("firm.toml", 'cat_imid = "123456:MMAU"', 'cat_imid = "MMAU"', "not CRD:IMID"),
    ("firm.toml", 'cat_imid = "123456:MMAU"', 'cat_imid = "123456:mmau"', "not CRD:IMID"),
])
def test_bad_reference_data_is_a_typed_error_naming_file_and_problem(refdir, file, old, new, message):
    _edit(refdir / file, old, new)
    with pytest.raises(RefDataError) as info:
        refdata.load(refdir)
    assert file in str(info.value) and message in str(info.value)


def test_missing_file_and_bad_toml(refdir):
    (refdir / "parties.toml").write_text("[[algo]\n")
    with pytest.raises(RefDataError, match="not valid TOML"):
        refdata.load(refdir)
    (refdir / "parties.toml").unlink()
    with pytest.raises(RefDataError, match="missing"):
        refdata.load(refdir)
    with pytest.raises(RefDataError, match="does not exist"):
        refdata.load(refdir / "nowhere")


def test_bundled_reference_data_describes_the_embedded_venue_and_the_engine():
    """What `mmaudit demo` / `mmaudit run` trade: every venue listing by id and name, with a
    fictitious, check-digit-valid ISIN and an option CFI for options; the engine's default parties."""
    from mm_core.config import EngineConfig
    from mm_core.sessionconfig import load_inputs
    from reports.identifiers import cfi_problem, isin_problem
    ref = refdata.load()
    venue = load_inputs().venue_config
    listings = {s.id: s.name for s in venue.symbols} | {o.id: o.name for o in venue.options}
    assert {i: inst.symbol for i, inst in ref.instruments.items()} == listings
    for inst in ref.instruments.values():
        assert isin_problem(inst.isin) is None and inst.isin.startswith("XX")
        assert "fictitious" in inst.full_name and not inst.in_firds
    for option in venue.options:
        cfi = ref.instruments[option.id].cfi
        assert cfi_problem(cfi) is None and cfi[:2] == "O" + option.right
    half_penny = {s.id for s in venue.symbols if s.half_penny}
    assert {i for i, inst in ref.instruments.items() if inst.tick_table == "us_half_penny"} == half_penny
    engine = EngineConfig()
    assert engine.algo_id in ref.algos and engine.desk_id in ref.desks
    assert engine.trader_id in ref.traders and ref.clients[engine.client_id].kind == "OWN"


@pytest.mark.parametrize("cfi,problem", [("OCESPS", None), ("OPASCN", None), ("OXESPS", "position 2"),
                                         ("OCQSPS", "position 3"), ("OCESPZ", "position 6")])
def test_option_cfi_codes_are_checked_position_by_position(cfi, problem):
    from reports.identifiers import cfi_problem
    found = cfi_problem(cfi)
    assert (found is None) if problem is None else (problem in found)


@settings(max_examples=200, deadline=None)
@given(st.sets(st.integers(0, 70_000), max_size=8), st.lists(st.integers(-3, 70_005), max_size=30),
       st.sampled_from([np.int64, np.uint32, np.uint64]))
def test_index_of_finds_each_id_or_minus_one_by_table_or_by_search(known, ids, dtype):
    """Small registries are looked up by table, others by binary search: both give the position
    in the sorted ids, and -1 for unknown, negative or out-of-range ids."""
    from reports.refdata import _index_of, _position_table
    sorted_ids = np.array(sorted(known), dtype=np.int64)
    if np.dtype(dtype).kind == "u":
        ids = [i for i in ids if i >= 0] + ([2**64 - 1] if dtype == np.uint64 else [])
    position = {v: i for i, v in enumerate(sorted(known))}
    for table in (None, _position_table(sorted_ids)):
        got = _index_of(sorted_ids, np.array(ids, dtype=dtype), table)
        assert got.tolist() == [position.get(i, -1) for i in ids]
