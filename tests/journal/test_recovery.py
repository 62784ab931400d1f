"""Recovery on writer open: stop at the first invalid record, zero everything after it, delete later
segments, report what was discarded, never hand out or skip to a later record. Readers never
repair."""
from __future__ import annotations

import hashlib

import pytest

from journal import Journal, Reader, RecordType, verify
from journal.errors import JournalError
from journal._journal_cffi import lib
from tests.journal.jhelpers import (SMALL_SEGMENT, flip_byte, payload_for, record_offsets, segment_files,
                                    write_journal)


def unseal_last(d):
    """Make the last segment look like its writer crashed: remove its SEAL and EOS records, and the
    summary a crashed writer would not have written yet."""
    seg = segment_files(d)[-1]
    seg.with_suffix(".sum").unlink(missing_ok=True)
    recs = record_offsets(seg)
    assert recs[-1][2] & lib.MMJ_FLAG_EOS and recs[-2][2] & lib.MMJ_FLAG_CONTROL
    data = bytearray(seg.read_bytes())
    start = recs[-2][0]
    data[start:recs[-1][0] + recs[-1][1]] = bytes(recs[-1][0] + recs[-1][1] - start)
    seg.write_bytes(bytes(data))
    return seg, start


def data_records(seg):
    return [r for r in record_offsets(seg) if not r[2] & (lib.MMJ_FLAG_CONTROL | lib.MMJ_FLAG_EOS)]


def digest(d):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in segment_files(d)}


def test_unpublished_record_bytes_are_zeroed_and_reported(tmp_path):
    d = tmp_path / "j"
    write_journal(d, 50)
    seg, end = unseal_last(d)
    with open(seg, "r+b") as f:          # a record whose word never got published
        f.seek(end + 4)
        f.write(b"\x11" * 60)
    with Journal(d) as j:
        rep = j.recovery
        assert (rep.reason_code, rep.segment, rep.offset, rep.seq) == (lib.MMJ_R_TORN, 0, end, 51)
        assert rep.bytes_discarded == 64   # from the word to the last byte
        assert rep.continued_segment == 0 and rep.sealed_segment is None   # appends go on in place
        assert j.append(RecordType.MD_PACKET, b"next") == 51
    assert verify(d).ok
    with Reader(d) as r:
        assert r.last_seq == 51 and r.get(50).payload == payload_for(50, 40 + 50 % 90)


def test_bad_record_in_last_segment_discards_the_rest_of_it(tmp_path):
    d = tmp_path / "j"
    write_journal(d, 300)
    seg, _ = unseal_last(d)
    recs = data_records(seg)
    bad_off = recs[10][0]
    first_seq = int.from_bytes(seg.read_bytes()[40:48], "little")
    flip_byte(seg, bad_off + 40)
    before = digest(d)
    with Reader(d) as r:                 # a reader stops at the bad record and repairs nothing
        assert r.last_seq == first_seq + 9
        assert r.stopped == {"reason": "bad crc", "segment": int(seg.name[4:20]), "offset": bad_off,
                             "seq": first_seq + 10}
    assert digest(d) == before
    damaged = seg.read_bytes()
    with Journal(d) as j:
        rep = j.recovery
        assert (rep.reason_code, rep.offset, rep.seq) == (lib.MMJ_R_BAD_CRC, bad_off, first_seq + 10)
        assert rep.bytes_discarded > 10 * 40
        assert j.next_seq == first_seq + 10      # nothing after the bad record survives in the journal
        # but the records after it still validate: damage, not a torn tail, so the segment as it
        # was is kept for the audit before the repair zeroes them
        assert rep.discarded_run == 1 and rep.segments_kept == 0
        assert rep.records_discarded == len(recs) - 11      # every record after the bad one, counted
        assert [p.name for p in (d / "discarded" / "r1").iterdir()] == [seg.name]   # no .tmp left
        copy = (d / "discarded" / "r1" / seg.name).read_bytes()
        assert copy == damaged[:len(copy)] and not any(damaged[len(copy):])
        assert len(copy) == bad_off + rep.bytes_discarded
        j.append(RecordType.MD_PACKET, b"replacement")
    with Reader(d) as r:
        assert r.get(first_seq + 10).payload == b"replacement"
        assert r.last_seq == first_seq + 10
    assert verify(d).ok


def test_bad_record_in_an_early_segment_moves_later_segments_aside(tmp_path):
    """Damage in a sealed segment (not a crash's torn tail): the journal becomes the valid prefix,
    and what it no longer holds is kept byte for byte in discarded/r1, never deleted."""
    d = tmp_path / "j"
    write_journal(d, 2000)
    files = segment_files(d)
    assert len(files) >= 4
    originals = {f.name: f.read_bytes() for f in files}
    victim = files[1]
    recs = data_records(victim)
    first_seq = int.from_bytes(victim.read_bytes()[40:48], "little")
    flip_byte(victim, recs[5][0] + 28)   # the salt check field
    damaged = victim.read_bytes()
    later = sum(len(data_records(f)) for f in files[2:])
    with Journal(d) as j:
        rep = j.recovery
        assert (rep.reason_code, rep.segment, rep.seq) == (lib.MMJ_R_BAD_SALT, 1, first_seq + 5)
        # the records after the bad one in its own segment, and every one in the segments after
        assert rep.segments_removed == len(files) - 2 and rep.records_discarded == later + len(recs) - 6
        assert rep.segments_kept == len(files) - 2 and rep.discarded_run == 1
        assert j.next_seq == first_seq + 5
        assert j.segment == 1 == rep.continued_segment   # appends go on in the repaired segment...
    names = [p.name for p in segment_files(d)]
    assert names == [f.name for f in files[:2]]          # ...and nothing is left after it in the journal
    assert verify(d).ok
    kept = d / "discarded" / "r1"
    assert sorted(p.name for p in kept.glob("*.mmj")) == [f.name for f in files[1:]]
    assert sorted(p.name for p in kept.glob("*.sum")) == [f.with_suffix(".sum").name for f in files[1:]]
    for f in files[2:]:
        assert (kept / f.name).read_bytes() == originals[f.name]
    copy = (kept / victim.name).read_bytes()      # the damaged segment as recovery found it
    assert damaged.startswith(copy) and not any(damaged[len(copy):]) and len(copy) > recs[-1][0]


def test_each_damaging_recovery_keeps_its_own_run_and_a_torn_tail_keeps_nothing(tmp_path):
    d = tmp_path / "j"
    write_journal(d, 2000)
    flip_byte(segment_files(d)[2], data_records(segment_files(d)[2])[3][0] + 40)
    with Journal(d) as j:
        assert j.recovery.discarded_run == 1
        for k in range(600):
            j.append(RecordType.MD_PACKET, payload_for(k, 100))
    flip_byte(segment_files(d)[1], data_records(segment_files(d)[1])[0][0] + 40)
    with Journal(d) as j:
        assert j.recovery.discarded_run == 2 and j.recovery.segments_kept >= 1
    assert sorted(p.name for p in (d / "discarded").iterdir()) == ["r1", "r2"]
    seg, end = unseal_last(d)            # a crashed writer's torn tail: zeroed, nothing kept
    with open(seg, "r+b") as f:
        f.seek(end)
        f.write(b"\x81" * 100)
    with Journal(d) as j:
        assert j.recovery.bytes_discarded > 0 and j.recovery.discarded_run == 0
    assert sorted(p.name for p in (d / "discarded").iterdir()) == ["r1", "r2"]
    assert verify(d).ok


def test_stale_bytes_of_another_journal_never_validate(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write_journal(a, 100)
    write_journal(b, 50)
    seg_b, end = unseal_last(b)
    foreign = segment_files(a)[0].read_bytes()
    recs = record_offsets(segment_files(a)[0])
    start, stop = recs[50][0], recs[60][0]
    with open(seg_b, "r+b") as f:        # valid records of journal a, pasted where b's next would go
        f.seek(end)
        f.write(foreign[start:stop])
    with Reader(b) as r:
        assert r.last_seq == 50 and r.stopped["reason"].startswith("bad salt")
    with Journal(b) as j:
        assert j.recovery.reason_code == lib.MMJ_R_BAD_SALT
        assert stop - start - 8 < j.recovery.bytes_discarded <= stop - start   # up to the last padding


def test_crash_during_roll_leaves_an_unsealed_segment_and_a_successor(tmp_path):
    d = tmp_path / "j"
    write_journal(d, 1200)
    files = segment_files(d)
    victim = files[-2]
    recs = record_offsets(victim)
    data = bytearray(victim.read_bytes())
    seal_at = recs[-2][0]
    data[seal_at:] = bytes(len(data) - seal_at)     # SEAL and EOS never written
    victim.write_bytes(bytes(data))
    in_last = len(data_records(files[-1]))
    with Journal(d) as j:
        rep = j.recovery
        assert rep.reason_code == lib.MMJ_R_NO_EOS and rep.segments_removed == 1
        assert rep.records_discarded == in_last and rep.bytes_discarded == 0
        assert j.next_seq == 1201 - in_last
        assert rep.continued_segment == len(files) - 2 and j.segment == len(files) - 2
        seqs = [j.append(RecordType.MD_PACKET, b"x%d" % k) for k in range(3)]
        assert seqs == list(range(1201 - in_last, 1204 - in_last))
    assert verify(d).ok
    assert len(segment_files(d)) == len(files) - 1   # the empty successor is gone, none new


def test_dangling_seal_without_eos(tmp_path):
    d = tmp_path / "j"
    write_journal(d, 100)
    seg = segment_files(d)[-1]
    recs = record_offsets(seg)
    eos_off, eos_size, _ = recs[-1]
    data = bytearray(seg.read_bytes())
    data[eos_off:eos_off + eos_size] = bytes(eos_size)
    seg.write_bytes(bytes(data))
    with Journal(d) as j:
        assert j.recovery.reason_code == lib.MMJ_R_TORN and j.next_seq == 101
    assert verify(d).ok


def test_recovery_is_idempotent_and_clean_afterwards(tmp_path):
    d = tmp_path / "j"
    write_journal(d, 100)
    seg, end = unseal_last(d)
    with open(seg, "r+b") as f:
        f.seek(end)
        f.write(b"\xff" * 16)
    with Journal(d) as j:
        assert not j.recovery.clean
    with Journal(d) as j:
        assert j.recovery.clean and j.recovery.previous_clean


def test_segment_header_damage_truncates_the_journal_there(tmp_path):
    d = tmp_path / "j"
    write_journal(d, 2000)
    files = segment_files(d)
    flip_byte(files[2], 45)              # first-sequence field of segment 2's header
    first_of_2 = int.from_bytes(bytes(files[1].read_bytes()[40:48]), "little") + len(data_records(files[1]))
    with Journal(d, segment_size=SMALL_SEGMENT) as j:
        rep = j.recovery
        assert (rep.reason_code, rep.segment, rep.offset) == (lib.MMJ_R_BAD_HEADER, 2, 0)
        assert j.next_seq == first_of_2
    assert verify(d).ok


def test_missing_first_segment_hides_everything_after_it(tmp_path):
    from journal import JournalCorrupt, Tailer
    d = tmp_path / "j"
    write_journal(d, 2000)
    in_first = len(data_records(segment_files(d)[0]))
    segment_files(d)[0].unlink()
    with Reader(d) as r:                 # later segments are never served without their predecessors
        assert len(r) == 0 and r.stopped["reason"] == "missing segment"
    with pytest.raises(JournalCorrupt):
        Tailer(d)
    assert verify(d).first_bad.reason_code == lib.MMJ_R_MISSING_SEGMENT
    with Journal(d) as j:
        assert j.recovery.reason_code == lib.MMJ_R_MISSING_SEGMENT and j.recovery.records_discarded == 2000 - in_first
        assert j.next_seq == 1


def test_a_segment_with_a_damaged_header_is_kept_with_the_segments_after_it(tmp_path):
    d = tmp_path / "j"
    write_journal(d, 2000)
    files = segment_files(d)
    originals = {f.name: f.read_bytes() for f in files}
    flip_byte(files[2], 8)               # the header's version field
    with Journal(d) as j:
        rep = j.recovery
        assert rep.reason_code == lib.MMJ_R_BAD_HEADER and rep.segment == 2
        assert rep.segments_removed == rep.segments_kept == len(files) - 2 and rep.discarded_run == 1
    kept = d / "discarded" / "r1"
    assert sorted(p.name for p in kept.glob("*.mmj")) == [f.name for f in files[2:]]
    assert (kept / files[3].name).read_bytes() == originals[files[3].name]
    assert verify(d).ok


def test_recovery_that_cannot_keep_the_damage_repairs_nothing(tmp_path):
    """discarded/ cannot be made (a file has its name): the writer open fails with a typed error
    and every segment is left exactly as it was."""
    d = tmp_path / "j"
    write_journal(d, 2000)
    victim = segment_files(d)[1]
    flip_byte(victim, data_records(victim)[5][0] + 40)
    (d / "discarded").write_bytes(b"not a directory")
    before = digest(d)
    with pytest.raises(JournalError):
        Journal(d)
    assert digest(d) == before
    (d / "discarded").unlink()
    with Journal(d) as j:                  # once it can, the same open keeps the damage
        assert j.recovery.discarded_run == 1 and j.recovery.segments_kept == len(before) - 2


def test_a_later_segment_whose_first_record_was_zeroed_is_kept_not_deleted(tmp_path):
    d = tmp_path / "j"
    write_journal(d, 2000)
    files = segment_files(d)
    first = record_offsets(files[3])[0][0]
    data = bytearray(files[3].read_bytes())
    data[first:first + 8] = bytes(8)       # its first word gone, its later records intact
    files[3].write_bytes(bytes(data))
    flip_byte(files[1], data_records(files[1])[5][0] + 40)
    with Journal(d) as j:
        assert j.recovery.segments_kept == len(files) - 2
    assert (d / "discarded" / "r1" / files[3].name).read_bytes() == bytes(data)
