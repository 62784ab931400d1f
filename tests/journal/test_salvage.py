"""salvage(): what recoveries kept in discarded/ read back from real damaged journals. Every record
after the damage with its original bytes, the damage located as invalid byte ranges, records the
journal still holds told from those it lost; bad kept files give typed errors or invalid ranges,
never a crash, and a fuzzed kept file never yields a record whose crc does not validate."""
from __future__ import annotations

import errno
import json
import os
import pathlib
import struct

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from cli.journal_cmd import command
from journal import (InvalidArgument, InvalidRange, Journal, JournalCorrupt, JournalIOError, JournalVersionError,
                     NotAJournal, Reader, RecordType, salvage, salvage_file)
from journal._journal_cffi import ffi, lib
from tests.journal.jhelpers import (HEADER, REC_HEADER, flip_byte, payload_for, record_offsets, rewrite_u32,
                                    segment_files, write_journal)
from tests.journal.test_recovery import data_records, unseal_last

CONTROL = lib.MMJ_FLAG_CONTROL | lib.MMJ_FLAG_EOS


def size_of(seq: int) -> int:
    return 40 + seq % 90      # write_journal's default payload sizes


def first_seq_of(seg) -> int:
    return int.from_bytes(seg.read_bytes()[40:48], "little")


def salt_of(d) -> bytes:
    salt = ffi.new("uint8_t[16]")
    assert lib.mmj_read_salt(os.fsencode(str(d)), salt) == lib.MMJ_OK
    return bytes(salt)


def record_size(length: int) -> int:
    return (REC_HEADER + length + 7) & ~7


def crc_holds(data: bytes, off: int, salt: bytes, index: int) -> bool:
    """journal.h RECORD straight from the spec: crc32c(K, word || bytes 8..R-1) with K the salt check
    of (salt, index), bytes past the end of the file read as zeros."""
    word, crc = struct.unpack_from("<II", data[off:off + 8].ljust(8, b"\0"))
    size = record_size(word & lib.MMJ_LENGTH_MASK)
    body = data[off:off + size].ljust(size, b"\0")
    k = lib.mmj_crc32c(0, salt + struct.pack("<Q", index), 24)
    return struct.unpack_from("<I", body, 28)[0] == k and lib.mmj_crc32c(k, body[:4] + body[8:], size - 4) == crc


def damaged_live_segment(d, count=300, bad=10):
    """A closed journal whose last segment is unsealed with a flipped payload byte in its data
    record `bad`; the writer's open keeps a copy. Returns (segment file, its bytes before the
    open, offset and size of the bad record, its sequence)."""
    write_journal(d, count)
    seg, _ = unseal_last(d)
    off, size, _ = data_records(seg)[bad]
    flip_byte(seg, off + REC_HEADER + 3)
    before = seg.read_bytes()
    with Journal(d) as j:
        assert j.recovery.discarded_run == 1 and j.recovery.segments_kept == 0
    return seg, before, off, size, first_seq_of(seg) + bad


def test_a_flipped_byte_in_the_live_segment_loses_no_record_to_salvage(tmp_path):
    d = tmp_path / "j"
    seg, before, bad_off, bad_size, bad_seq = damaged_live_segment(d)
    [run] = salvage(d)
    assert run.run == 1 and run.path == str(d / "discarded" / "r1") and run.other_files == ()
    [kept] = run.files
    assert kept.name == seg.name and kept.header_problem is None and kept.index == 0
    assert kept.file_size < kept.segment_size == 64 * 1024     # the copy is cut at its last non-zero byte
    assert kept.invalid == (InvalidRange(bad_off, bad_size),)  # exactly the damaged record
    data = kept.data_records
    assert [r.seq for r in data] == [s for s in range(1, 301) if s != bad_seq]
    for r in data:     # the original records, byte for byte
        assert (r.rtype, r.ts_ns, r.ts_source, r.clock_state) == (RecordType.MD_PACKET, r.seq * 1000, 2, 1)
        assert r.payload == payload_for(r.seq, size_of(r.seq))
        assert before[r.offset + REC_HEADER:r.offset + REC_HEADER + len(r.payload)] == r.payload
    # the records before the damage are still in the journal; those after it were zeroed by the repair
    assert all(r.in_journal and r.identical and not r.lost for r in data if r.seq < bad_seq)
    assert all(not r.in_journal and r.lost for r in data if r.seq > bad_seq)
    assert kept.lost == 300 - bad_seq and kept.seq_range == (1, 300)
    controls = [r for r in kept.records if r.is_control]
    assert controls and {r.type_name for r in controls} == {"CHECKPOINT"}   # unsealed: no SEAL or EOS
    assert all(r.flags == lib.MMJ_FLAG_CONTROL and len(r.payload) == lib.MMJ_CONTROL_PAYLOAD for r in controls)


def test_records_the_journal_holds_again_under_the_same_sequence_are_still_lost(tmp_path):
    d = tmp_path / "j"
    _, _, _, _, bad_seq = damaged_live_segment(d)
    with Journal(d) as j:      # the writer goes on from the damaged record's sequence
        for k in range(3):
            assert j.append(RecordType.MD_PACKET, b"new %d" % k, ts_ns=7) == bad_seq + k
    [kept] = salvage(d)[0].files
    by_seq = {r.seq: r for r in kept.data_records}
    for seq in (bad_seq + 1, bad_seq + 2):
        assert by_seq[seq].in_journal and not by_seq[seq].identical and by_seq[seq].lost
    assert not by_seq[bad_seq + 3].in_journal
    assert kept.lost == 300 - bad_seq


def test_damage_in_a_sealed_segment_salvages_every_record_of_the_segments_moved_whole(tmp_path):
    d = tmp_path / "j"
    write_journal(d, 2000)
    files = segment_files(d)
    originals = {f.name: f.read_bytes() for f in files}
    victim = files[1]
    bad_off, bad_size, _ = data_records(victim)[5]
    bad_seq = first_seq_of(victim) + 5
    flip_byte(victim, bad_off + 28)      # the salt check field
    with Journal(d) as j:
        assert j.recovery.segments_kept == len(files) - 2
    [run] = salvage(d)
    assert [f.name for f in run.files] == [f.name for f in files[1:]]
    assert set(run.other_files) == {f.with_suffix(".sum").name for f in files[1:]}   # summaries, not read
    assert run.files[0].invalid == (InvalidRange(bad_off, bad_size),)
    for kept in run.files[1:]:           # moved whole: every record, nothing invalid
        raw = record_offsets(pathlib.Path(kept.path))   # moved, byte for byte (test_recovery checks)
        assert kept.invalid == () and kept.file_size == kept.segment_size
        assert [(r.offset, r.flags) for r in kept.records] == [(o, w & CONTROL) for o, _, w in raw]
        assert [r.type_name for r in kept.records[-2:]] == ["SEAL", "EOS"]
        for r in kept.data_records:
            assert r.payload == payload_for(r.seq, size_of(r.seq)) and r.lost and not r.in_journal
        assert all(crc_holds(originals[kept.name], r.offset, salt_of(d), kept.index) for r in kept.records)
    salvaged = sorted(r.seq for kept in run.files for r in kept.data_records)
    with Reader(d) as reader:
        held = [rec.seq for rec in reader]
    assert held == list(range(1, bad_seq))
    assert sorted(set(held) | set(salvaged)) == [s for s in range(1, 2001) if s != bad_seq]   # only the bad one
    assert sum(kept.lost for kept in run.files) == 2000 - bad_seq


def test_a_last_record_whose_zero_tail_the_copy_cut_still_validates(tmp_path):
    """The kept copy ends at the segment's last non-zero byte: a record ending in zero bytes loses
    them in the copy and is read back with them (its crc covers them)."""
    d = tmp_path / "j"
    write_journal(d, 40)
    unseal_last(d)
    payload = b"tail" + bytes(300)
    with Journal(d) as j:        # continues in the unsealed segment
        seq = j.append(RecordType.MD_PACKET, payload, ts_ns=5, ts_source=3, clock_state=1)
    seg, _ = unseal_last(d)      # the record is its last non-zero bytes now
    flip_byte(seg, data_records(seg)[2][0] + REC_HEADER)
    with Journal(d):
        pass
    [kept] = salvage(d)[0].files
    last = kept.data_records[-1]
    assert kept.file_size < last.offset + REC_HEADER + len(payload)   # the zeros are not in the file
    assert (last.seq, last.payload, last.ts_ns, last.ts_source) == (seq, payload, 5, 3)
    assert len(kept.invalid) == 1


def test_salvage_of_a_journal_without_discarded_data_and_of_a_non_journal(tmp_path):
    d = tmp_path / "j"
    write_journal(d, 20)
    assert salvage(d) == []
    with pytest.raises(NotAJournal):
        salvage(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotAJournal):
        salvage(tmp_path / "empty")


def kept_copy(tmp_path):
    """A journal with one kept copy; returns (journal dir, the copy's path)."""
    d = tmp_path / "j"
    seg = damaged_live_segment(d, count=120)[0]
    return d, d / "discarded" / "r1" / seg.name


def only_unreadable(d):
    """The one unreadable kept file of salvage(d)'s one run: (its UnreadableFile, the run)."""
    [run] = salvage(d)
    [bad] = run.unreadable
    return bad, run


@pytest.mark.parametrize("length", [0, 1, HEADER - 1])
def test_a_kept_file_shorter_than_a_header_is_a_typed_error(tmp_path, length):
    d, copy = kept_copy(tmp_path)
    copy.write_bytes(copy.read_bytes()[:length])
    with pytest.raises(JournalCorrupt, match=copy.name):
        salvage_file(copy, salt_of(d))
    bad, run = only_unreadable(d)
    assert bad.path == str(copy) and isinstance(bad.error, JournalCorrupt) and run.files == ()


def test_a_kept_file_without_the_segment_magic_is_a_typed_error(tmp_path):
    d, copy = kept_copy(tmp_path)
    flip_byte(copy, 2)
    bad, _ = only_unreadable(d)
    assert isinstance(bad.error, JournalCorrupt) and "no segment magic" in str(bad.error)


def test_a_kept_file_that_is_not_a_file_is_a_typed_error(tmp_path):
    d, copy = kept_copy(tmp_path)
    odd = d / "discarded" / "r1" / "seg-0000000000000009.mmj"
    odd.mkdir()
    bad, run = only_unreadable(d)
    assert isinstance(bad.error, JournalIOError) and bad.name == odd.name and odd.name in str(bad.error)
    assert [f.name for f in run.files] == [copy.name]          # the good copy is still read
    os.rmdir(odd)
    os.mkfifo(odd)                                             # must not hang the open
    bad, run = only_unreadable(d)
    assert isinstance(bad.error, JournalIOError) and [f.name for f in run.files] == [copy.name]


def test_one_unreadable_kept_file_leaves_the_others_salvaged(tmp_path):
    """Garbage and a newer-format file among kept files, in the same run and in a run of their
    own: each is named with its typed error, every other kept file is read back as before."""
    d, copy = kept_copy(tmp_path)
    [whole] = salvage(d)
    run1 = d / "discarded" / "r1"
    (run1 / "seg-0000000000000099.mmj").write_bytes(b"not a segment at all" * 10)
    (d / "discarded" / "r2").mkdir()
    newer = d / "discarded" / "r2" / "seg-0000000000000007.mmj"
    newer.write_bytes(copy.read_bytes())
    rewrite_u32(newer, 8, lib.MMJ_FORMAT_VERSION + 1, 124)     # intact header, newer version
    (d / "discarded" / "r3").write_bytes(b"a file where a run directory belongs")
    first, second, third = salvage(d)
    assert first.files == whole.files                          # the good copy, read in full
    assert [(b.name, type(b.error)) for b in first.unreadable] == [("seg-0000000000000099.mmj", JournalCorrupt)]
    assert second.files == () and [type(b.error) for b in second.unreadable] == [JournalVersionError]
    assert third.files == () and third.unreadable[0].path == str(d / "discarded" / "r3")
    assert isinstance(third.unreadable[0].error, JournalIOError)
    out = run_cli(d)
    assert out.exit_code == 1, out.output
    lines = out.output.splitlines()
    assert any(line.startswith(f"  {copy.name}: ") for line in lines)          # still salvaged
    assert f"  UNREADABLE {run1 / 'seg-0000000000000099.mmj'}: JournalCorrupt: " in "\n".join(lines)
    assert "JournalVersionError" in out.output and str(d / "discarded" / "r3") in out.output
    as_json = run_cli(d, "--json")
    assert as_json.exit_code == 1
    runs = json.loads(as_json.output.splitlines()[0])["runs"]
    assert [len(r["files"]) for r in runs] == [1, 0, 0]
    assert [[u["error"] for u in r["unreadable"]] for r in runs] == [
        ["JournalCorrupt"], ["JournalVersionError"], ["JournalIOError"]]


def test_a_damaged_header_is_reported_and_its_records_still_read(tmp_path):
    d, copy = kept_copy(tmp_path)
    whole = salvage(d)[0].files[0]
    flip_byte(copy, 90)          # a zero byte of the header: only its crc fails
    kept = salvage(d)[0].files[0]
    assert kept.header_problem == "bad segment header"
    # without an intact header the copy is not extended with zeros: a record cut short fails
    assert [r.seq for r in kept.records] == [r.seq for r in whole.records][:len(kept.records)]
    assert len(kept.records) >= len(whole.records) - 1


def test_a_truncated_kept_file_and_a_length_past_its_end_become_invalid_ranges(tmp_path):
    d, copy = kept_copy(tmp_path)
    whole = salvage(d)[0].files[0]
    data = bytearray(copy.read_bytes())
    cut_rec = whole.records[-5]
    cut = cut_rec.offset + REC_HEADER + len(cut_rec.payload) // 2     # mid-payload, after a non-zero byte
    while not data[cut - 1]:
        cut -= 1
    copy.write_bytes(bytes(data[:cut]))
    kept = salvage(d)[0].files[0]
    assert kept.records == whole.records[:-5]
    assert kept.invalid[-1] == InvalidRange(cut_rec.offset, cut - cut_rec.offset)
    victim = whole.records[3]
    struct.pack_into("<I", data, victim.offset, lib.MMJ_FLAG_PUBLISHED | lib.MMJ_LENGTH_MASK)   # 256 MiB
    copy.write_bytes(bytes(data))
    kept = salvage(d)[0].files[0]
    assert victim.offset not in [r.offset for r in kept.records]
    assert InvalidRange(victim.offset, whole.records[4].offset - victim.offset) in kept.invalid
    assert len(kept.records) == len(whole.records) - 1


def test_a_kept_file_of_a_newer_format_is_a_typed_error(tmp_path):
    d, copy = kept_copy(tmp_path)
    rewrite_u32(copy, 8, lib.MMJ_FORMAT_VERSION + 1, 124)      # intact header, newer version
    with pytest.raises(JournalVersionError, match=copy.name):
        salvage_file(copy, salt_of(d))
    bad, _ = only_unreadable(d)
    assert isinstance(bad.error, JournalVersionError) and copy.name in str(bad.error)


def test_the_c_call_counts_everything_and_fills_only_what_fits(tmp_path):
    d, copy = kept_copy(tmp_path)
    path, salt, before = os.fsencode(str(copy)), salt_of(d), copy.read_bytes()
    report = ffi.new("mmj_salvage_report *")
    assert lib.mmj_salvage_segment(path, salt, ffi.NULL, 0, ffi.NULL, 0, report, ffi.NULL) == lib.MMJ_OK
    total, invalid = report.records, report.invalid
    assert total > 100 and invalid == 1 and report.file_size == copy.stat().st_size
    records = ffi.new("mmj_record[3]")
    ranges = ffi.new("mmj_byte_range[1]")
    assert lib.mmj_salvage_segment(path, salt, records, 2, ranges, 0, report, ffi.NULL) == lib.MMJ_OK
    assert (report.records, report.invalid) == (total, invalid)      # counts are of all, not of the room
    assert [records[i].offset for i in range(3)] == [HEADER, HEADER + record_size(records[0].length), 0]
    assert records[0].payload == ffi.NULL and ranges[0].length == 0
    assert lib.mmj_salvage_segment(ffi.NULL, salt, ffi.NULL, 0, ffi.NULL, 0, report, ffi.NULL) == lib.MMJ_E_ARG
    assert lib.mmj_salvage_segment(path, ffi.NULL, ffi.NULL, 0, ffi.NULL, 0, report, ffi.NULL) == lib.MMJ_E_ARG
    assert lib.mmj_salvage_segment(path, salt, ffi.NULL, 0, ffi.NULL, 0, ffi.NULL, ffi.NULL) == lib.MMJ_E_ARG
    err = ffi.new("int *")
    gone = os.fsencode(str(tmp_path / "gone.mmj"))
    assert lib.mmj_salvage_segment(gone, salt, ffi.NULL, 0, ffi.NULL, 0, report, err) == lib.MMJ_E_IO
    assert err[0] == errno.ENOENT
    assert copy.read_bytes() == before       # read-only
    with pytest.raises(InvalidArgument):     # the binding never hands C a short salt
        salvage_file(copy, salt[:8])


@pytest.fixture(scope="module")
def fuzz_base(tmp_path_factory):
    """The bytes of a real kept copy and its journal's salt, and a scratch file to fuzz."""
    tmp = tmp_path_factory.mktemp("salvage-fuzz")
    d, copy = kept_copy(tmp)
    whole = salvage_file(copy, salt_of(d))
    return copy.read_bytes(), salt_of(d), whole, tmp / "seg-0000000000000000.mmj"


@settings(max_examples=300, deadline=None)
@given(flips=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(1, 255)), max_size=12),
       keep=st.one_of(st.none(), st.integers(0, 1 << 20)))
def test_fuzzed_kept_file_never_crashes_nor_yields_an_unchecked_record(fuzz_base, flips, keep):
    base, salt, whole, path = fuzz_base
    data = bytearray(base)
    hit = set()
    for at, xor in flips:
        at %= len(data)
        data[at] ^= xor
        hit.add(at)
    if keep is not None:
        del data[keep % (len(data) + 1):]
    data = bytes(data)
    path.write_bytes(data)
    try:
        kept = salvage_file(path, salt)
    except JournalCorrupt:     # shorter than a header, or the magic hit
        assert len(data) < HEADER or data[:8] != base[:8]
        return
    ends = [(r.offset, r.offset + REC_HEADER + len(r.payload)) for r in kept.records]
    for r in kept.records:
        assert r.offset % 8 == 0 and HEADER <= r.offset < len(data)
        assert crc_holds(data, r.offset, salt, kept.index)
        assert r.payload == data[r.offset + REC_HEADER:r.offset + REC_HEADER + len(r.payload)].ljust(
            len(r.payload), b"\0")
    spans = sorted(ends + [(g.offset, g.offset + g.length) for g in kept.invalid])
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))       # records and ranges never overlap
    assert all(0 < g.length and g.offset + g.length <= len(data) for g in kept.invalid)
    if not any(at < HEADER for at in hit):      # with the header intact, every untouched record is found
        found = {r.offset for r in kept.records}
        for r in whole.records:
            end = r.offset + record_size(len(r.payload))
            if end <= len(data) and not any(r.offset <= at < end for at in hit):
                assert r.offset in found


def run_cli(*args):
    return CliRunner().invoke(command, ["salvage", *[str(a) for a in args]])


def test_cli_lists_runs_files_counts_and_invalid_ranges(tmp_path):
    d = tmp_path / "j"
    seg, _, bad_off, bad_size, bad_seq = damaged_live_segment(d)
    text = run_cli(d)
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert lines[0] == f"r1 {d / 'discarded' / 'r1'}: 1 segment file(s)"
    assert lines[1].startswith(f"  {seg.name}: ") and f"data records valid (seq 1..300)" in lines[1]
    assert f", {300 - bad_seq} no longer in the journal" in lines[1]
    assert lines[2] == f"    invalid bytes {bad_off}..{bad_off + bad_size - 1} ({bad_size} bytes)"
    assert lines[-1] == f"299 data record(s) salvaged from 1 run(s), {300 - bad_seq} of them no longer in the journal"
    out = run_cli(d, "--json")
    assert out.exit_code == 0
    [run] = json.loads(out.output)["runs"]
    [kept] = run["files"]
    assert kept["invalid"] == [{"offset": bad_off, "length": bad_size}] and kept["lost"] == 300 - bad_seq
    records = {r["seq"]: r for r in kept["records"] if not r["control"]}
    assert bytes.fromhex(records[bad_seq + 1]["payload"]) == payload_for(bad_seq + 1, size_of(bad_seq + 1))
    assert records[bad_seq + 1]["type"] == "MD_PACKET" and records[bad_seq + 1]["lost"]
    assert records[1]["in_journal"] and records[1]["identical"] and not records[1]["lost"]


def test_cli_exit_codes(tmp_path):
    d = tmp_path / "j"
    write_journal(d, 10)
    clean = run_cli(d)
    assert clean.exit_code == 0 and "no discarded/ runs" in clean.output
    assert json.loads(run_cli(d, "--json").output)["runs"] == []
    missing = run_cli(tmp_path / "nothing")
    assert missing.exit_code == 1 and len(missing.output.strip().splitlines()) == 1
    assert "not a journal" in missing.output
    run_dir = d / "discarded" / "r1"
    run_dir.mkdir(parents=True)
    (run_dir / "seg-0000000000000003.mmj").write_bytes(b"garbage")
    garbage = run_cli(d)
    assert garbage.exit_code == 1
    assert f"  UNREADABLE {run_dir / 'seg-0000000000000003.mmj'}: JournalCorrupt: " in garbage.output
