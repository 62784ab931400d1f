"""Power loss, simulated as SQLite's crash VFS does: writes that no msync or fsync covered yet are
kept, dropped or torn, 512-byte sector by sector, and the journal is opened on what is left. What
each msync covered (the writer's sync hook says which bytes, when) survives, as on a real device.

The result must be exactly a valid prefix of what was written and hold every record that was
acknowledged durable (returned in `sync` mode, or covered by an explicit sync()).
"""
from __future__ import annotations

import random

import pytest

from journal.stress import SECTOR, PowerLossReport, cut_power, powerloss_runs


def _sectors(data: bytes) -> list[bytes]:
    return [data[i: i + SECTOR] for i in range(0, len(data), SECTOR)]


def test_cut_power_gives_each_changed_sector_one_of_three_fates():
    rng = random.Random(7)
    before = {"seg": bytes(8 * SECTOR), "lock": b"pid"}
    written = bytearray(before["seg"])
    for sector in (1, 2, 5, 6, 7):
        written[sector * SECTOR + 100: sector * SECTOR + 400] = rng.randbytes(300)
    after = {"seg": bytes(written), "lock": b"pid", "new-seg": rng.randbytes(3 * SECTOR)}
    report = PowerLossReport()
    fates = {0: set(), 1: set(), 2: set()}
    for seed in range(200):
        cut = cut_power(before, after, random.Random(seed), report)
        assert cut["lock"] == b"pid"
        for i, (old, new, got) in enumerate(zip(_sectors(before["seg"]), _sectors(after["seg"]),
                                                _sectors(cut["seg"]))):
            if old == new:
                assert got == old                  # untouched sectors are never damaged
                continue
            assert got[:100] == old[:100] and got[400:] == old[400:]   # powersafe overwrite
            fates[0 if got == new else 1 if got == old else 2].add(i)
        if "new-seg" in cut:
            assert len(cut["new-seg"]) == 3 * SECTOR
    assert all(fates[f] == {1, 2, 5, 6, 7} for f in fates), fates   # every fate hits every sector
    assert report.sectors_kept and report.sectors_dropped and report.sectors_torn
    assert 0 < report.files_lost < 200              # a new file's creation is sometimes lost


@pytest.mark.slow
def test_power_cut_after_sync_keeps_every_durable_record_and_only_a_prefix(tmp_path):
    # The images are taken through the page cache, so this proves recovery against every mix of
    # kept, lost and torn sectors; that msync really reached the device is the kernel's to keep.
    report = powerloss_runs(1000, seed=1, workdir=tmp_path)
    assert report.first_failure is None, report.first_failure
    assert report.cases == 1000 and report.failures == 0
    assert report.sectors_kept > 1000 and report.sectors_dropped > 1000 and report.sectors_torn > 1000
    assert report.files_lost > 0, report            # cuts across segment rolls happened
    assert report.recovered >= report.durable > 20_000, report
