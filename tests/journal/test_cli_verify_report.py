"""What `journal verify` and `journal info` say: a hash link that does not match proves none of
the records it covers, so verify claims only those before it; a `discarded` that is not a
readable directory is a problem entry, not a traceback."""
from __future__ import annotations

import re

from click.testing import CliRunner

import journal
from cli.journal_cmd import command
from journal._journal_cffi import lib
from tests.journal.jhelpers import segment_files, write_journal
from tests.journal.test_tamper import expected_sequences, rewrite_with_valid_crc


def run(*args):
    return CliRunner().invoke(command, [str(a) for a in args])


def forged(d, records: int, index: int) -> int:
    """A journal with hash links every 10 records whose index-th record of the first segment has
    a payload byte changed and its CRC recomputed (only the chain sees it); its sequence."""
    write_journal(d, records, checkpoint_every=10)
    seg = segment_files(d)[0]
    off, size, altered = expected_sequences(seg, 1)[index]
    rewrite_with_valid_crc(seg, off, size, lambda data: data.__setitem__(off + 40, data[off + 40] ^ 1))
    return altered


def test_a_chain_mismatch_claims_only_the_records_before_the_failed_link(tmp_path):
    d = tmp_path / "j"
    altered = forged(d, 300, 57)
    bad = journal.verify(d).first_bad
    assert bad.reason_code == lib.MMJ_R_CHAIN and bad.chain_from_seq <= altered < bad.seq
    result = run("verify", d)
    assert result.exit_code == 1
    message = result.stderr
    assert "verified before it" not in message and f"last seq {bad.seq - 1}" not in message
    claimed = re.search(r"records verified up to seq (\d+); seq (\d+)\.\.(\d+) not proven: one or more altered",
                        message)
    assert claimed, message
    verified_to, unproven_from, unproven_to = map(int, claimed.groups())
    assert verified_to < altered and unproven_from <= altered <= unproven_to
    assert (verified_to, unproven_from, unproven_to) == (bad.chain_from_seq - 1, bad.chain_from_seq, bad.seq - 1)


def test_a_chain_mismatch_in_the_first_link_verifies_nothing(tmp_path):
    d = tmp_path / "j"
    assert forged(d, 50, 2) == 3
    result = run("verify", d)
    assert result.exit_code == 1 and "no record verified; seq 1..10 not proven: one or more altered" in result.stderr


def test_a_file_named_discarded_is_a_problem_entry(tmp_path):
    d = tmp_path / "j"
    write_journal(d, 20)
    (d / "discarded").write_bytes(b"not a directory")
    report = journal.verify(d)
    assert report.ok and len(report.discarded) == 1
    assert report.discarded[0]["problem"].startswith("NotADirectoryError")
    assert journal.info(d)["discarded"] == list(report.discarded)
    checked = run("verify", d)
    assert checked.exit_code == 1 and "Traceback" not in checked.output
    assert "DAMAGED EARLIER" in checked.stderr and "unreadable (NotADirectoryError" in checked.stderr
    shown = run("info", d)
    assert shown.exit_code == 0, shown.output
    assert f"discarded {d / 'discarded'}: unreadable (NotADirectoryError" in shown.output
