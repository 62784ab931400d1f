"""CAT's compiled and arithmetic shortcuts write the very bytes of the passes they replaced: the
report of a journal of many chunks, built once as it is and once with the reference passes (numpy
layout of CAT timestamps, tradingSession read from the timestamp's digits, Arrow's own text join),
gives byte-identical Parquet, JSON and manifest files."""
from __future__ import annotations

import numpy as np
import pyarrow.compute as pc

from reports import cat, events, numtext, orderjoin, timetext
from reports.run import run
from tests.reports.journal_builder import FIXTURE_REFDATA, DayBuilder, standard_day
from tests.reports.test_cat_trading_session import sessions_from_stamp_digits

HOUR = 3600 * 10**9


def _reference_sessions(tif: np.ndarray, local_ns: np.ndarray) -> np.ndarray:
    """tradingSession from the HHMMSS digits of each row's CAT timestamp text."""
    return sessions_from_stamp_digits(tif, timetext.cat_timestamp_rows_reference(local_ns))


def _day() -> DayBuilder:
    """Several scripted days' events in one journal (replaces, partial fills, cancels, an IOC),
    orders of every kind of time in force at the regular session's bounds (09:30 and 16:00 ET, a
    second either side), and a day past midnight Eastern (the next trade date)."""
    b = DayBuilder(start_hms=(14, 29, 59))               # 09:29:59 ET (EST, UTC-5)
    close = b.now + (6 * 3600 + 30 * 60 + 1) * 10**9     # 16:00:00 ET
    for i, tif in enumerate((0, 0, 1, 2, 60, 99998, 99999)):         # 09:29:59 .. 09:30:05
        b.clock_sample()
        b.enter(f"O{i}", 1, "B", 1_499_900, 100, tif=tif)
        b.advance(10**9)
    for _ in range(3):
        standard_day(b)
    b.now = close - 3 * 10**9
    for i, tif in enumerate((3, 2, 1, 0, 0, 60, 99998, 99999)):      # 15:59:57 .. 16:00:04: ending at 16:00
        b.clock_sample()
        b.enter(f"C{i}", 1, "B", 1_499_900, 100, tif=tif)
        b.advance(30_000); b.accept(f"C{i}")
        b.advance(30_000); b.cancel(f"C{i}")
        b.advance(20_000); b.canceled(f"C{i}", 100)
        b.advance(10**9 - 80_000)
    b.advance(9 * HOUR)                                  # after midnight Eastern
    standard_day(b)
    return b


def _files(root) -> dict[str, bytes]:
    return {str(f.relative_to(root)): f.read_bytes() for f in sorted(root.rglob("*")) if f.is_file()}


def test_the_cat_report_is_the_same_bytes_as_with_the_reference_passes(tmp_path, monkeypatch):
    journal = _day().write(tmp_path / "j")
    monkeypatch.setattr(events, "CHUNK_SEQS", 16)       # many chunks: orders joined across them
    run(["cat"], journal, tmp_path / "new", refdata_dir=FIXTURE_REFDATA)
    monkeypatch.setattr(orderjoin, "cat_timestamps", timetext.cat_timestamp_rows_reference)
    monkeypatch.setattr(cat, "_trading_sessions", _reference_sessions)
    monkeypatch.setattr(numtext, "join_text", lambda parts, sep="": pc.binary_join_element_wise(*parts, sep))
    run(["cat"], journal, tmp_path / "reference", refdata_dir=FIXTURE_REFDATA)
    new, reference = _files(tmp_path / "new"), _files(tmp_path / "reference")
    assert sum(name.endswith(".parquet") for name in new) >= 3      # two trade dates and rejects
    assert new.keys() == reference.keys()
    assert [name for name in new if new[name] != reference[name]] == []
