"""Reader fuzzing: hypothesis corrupts valid journals (bit flips, truncation, garbage, wrong
headers, missing, swapped or spliced segments); opening, reading, tailing, recovering and verifying
must either raise the journal's typed error or return only valid records, a prefix of what was
written. Never a crash, a hang (a watchdog ends the run; see WATCHDOG_LOG) or a corrupt payload.
"""
from __future__ import annotations

import contextlib
import faulthandler
import os
import pathlib
import random
import shutil
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import journal
from journal.catalogue import RecordType
from journal.stress import expected_record, read_back, scratch_dir, snapshot, write_records

RECORDS = 700
SEGMENT = 64 * 1024
FILE_INDEX = st.integers(0, 31)          # taken modulo the journal's file count
OFFSET = st.integers(0, 1 << 24)         # taken modulo the chosen file's size
MUTATION = st.one_of(
    st.tuples(st.just("flip"), FILE_INDEX, OFFSET, st.integers(0, 7)),
    st.tuples(st.just("truncate"), FILE_INDEX, OFFSET),
    st.tuples(st.just("garbage"), FILE_INDEX, OFFSET, st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("zero"), FILE_INDEX, OFFSET, st.integers(1, 4096)),
    st.tuples(st.just("header"), FILE_INDEX, st.integers(0, 127), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("random_file"), FILE_INDEX, st.integers(0, 2**32)),
    st.tuples(st.just("random_body"), FILE_INDEX, st.integers(0, 2**32)),   # header kept, records garbage
    st.tuples(st.just("splice"), FILE_INDEX, FILE_INDEX, OFFSET, st.integers(1, 8192)),  # other file's bytes
    st.tuples(st.just("delete"), FILE_INDEX),
    st.tuples(st.just("copy"), FILE_INDEX, FILE_INDEX),
)


@pytest.fixture
def scratch(tmp_path):
    with scratch_dir(tmp_path) as path:
        yield path


WATCHDOG_LOG = pathlib.Path(tempfile.gettempdir()) / "mmaudit-fuzz-watchdog.log"


@contextlib.contextmanager
def watchdog(seconds: float = 60):
    """A hang in C cannot be interrupted from Python: dump every stack to WATCHDOG_LOG and exit.

    (pytest captures fd 2, so a dump there would vanish with the process.)"""
    with open(WATCHDOG_LOG, "w") as log:
        faulthandler.dump_traceback_later(seconds, exit=True, file=log)
        try:
            yield
        finally:
            faulthandler.cancel_dump_traceback_later()


class Images(dict):
    """Journal file images by name (short repr: hypothesis prints the test's arguments)."""

    def __repr__(self) -> str:
        return f"Images({sorted(self)})"


@pytest.fixture(scope="module")
def bases(tmp_path_factory) -> Images:
    """Valid journals as file images: one closed cleanly, one caught mid-write (writer still open)."""
    root = tmp_path_factory.mktemp("fuzz-bases")
    images = Images()
    for name, close in (("closed", True), ("live", False)):
        path = root / name
        writer = journal.Journal(str(path), segment_size=SEGMENT, durability="pagecache")
        write_records(writer, 0, RECORDS)
        if close:
            writer.close()
            images[name] = snapshot(path)
        else:
            images[name] = snapshot(path)
            writer.close()
    assert all(sum(n.startswith("seg-") for n in files) >= 3 for files in images.values())
    return images


def _mutate(files: dict[str, bytes], mutations) -> dict[str, bytes]:
    files = dict(files)
    for kind, index, *args in mutations:
        names = sorted(files)
        if not names:
            break
        name = names[index % len(names)]
        data = bytearray(files[name])
        if kind == "delete":
            del files[name]
            continue
        if kind == "copy":
            files[names[args[0] % len(names)]] = bytes(data)
            continue
        if kind == "random_file":
            files[name] = random.Random(args[0]).randbytes(len(data))
            continue
        if kind == "random_body":
            files[name] = bytes(data[:128]) + random.Random(args[0]).randbytes(max(0, len(data) - 128))
            continue
        if kind == "splice":   # the same offset of another file: valid records, wrong segment
            source = files[names[args[0] % len(names)]]
            at = args[1] % max(1, min(len(data), len(source)))
            data[at: at + args[2]] = source[at: at + args[2]]
            files[name] = bytes(data[: len(files[name])])
            continue
        if not data:
            continue
        if kind == "flip":
            data[args[0] % len(data)] ^= 1 << args[1]
        elif kind == "truncate":
            del data[args[0] % len(data):]
        elif kind == "garbage":
            at = args[0] % len(data)
            data[at: at + len(args[1])] = args[1]
        elif kind == "zero":
            at = args[0] % len(data)
            data[at: at + args[1]] = bytes(len(data[at: at + args[1]]))
        elif kind == "header":
            data[args[0]: args[0] + len(args[1])] = args[1]
        files[name] = bytes(data)
    return files


def _image(path: pathlib.Path, files: dict[str, bytes]) -> pathlib.Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    for name, data in files.items():
        (path / name).write_bytes(data)
    return path


def _assert_valid_prefix(records) -> int:
    """Every record returned is the one written at its place; returns how many there were."""
    data = [r for r in records if r.rtype not in (RecordType.CHECKPOINT, RecordType.SEAL)]
    for idx, rec in enumerate(data):
        want = expected_record(idx)
        assert rec.seq == idx + 1
        assert (rec.rtype, bytes(rec.payload), rec.ts_ns, rec.ts_source, rec.clock_state) == \
            (want.rtype, want.payload, want.ts_ns, want.ts_source, want.clock_state), f"record {idx}"
    assert len(data) <= RECORDS
    return len(data)


def _assert_fixed_rows_valid(rows, readable: int) -> None:
    """read_fixed rows: each one the TIMER record written at its seq, within the readable prefix."""
    assert list(rows["seq"]) == sorted(rows["seq"])
    for row in rows:
        want = expected_record(int(row["seq"]) - 1)
        assert int(row["seq"]) <= readable and want.rtype == RecordType.TIMER
        assert (int(row["ts_ns"]), int(row["ts_source"]), int(row["clock_state"])) == \
            (want.ts_ns, want.ts_source, want.clock_state)
        assert row.tobytes()[-len(want.payload):] == want.payload


def _read_only_paths(path: pathlib.Path) -> None:
    try:
        with journal.Reader(str(path)) as reader:
            readable = _assert_valid_prefix(list(reader))
            _assert_fixed_rows_valid(reader.read_fixed(RecordType.TIMER), readable)
    except journal.JournalError:
        pass
    try:
        journal.verify(str(path))
    except journal.JournalError:
        pass
    try:
        with journal.Tailer(str(path), from_seq=1) as tailer:
            seen = []
            for _ in range(RECORDS + 1):      # bounded: a tailer must never loop past the end
                rec = tailer.next(0)
                if rec is None:
                    break
                seen.append(rec)
        _assert_valid_prefix(seen)
    except journal.JournalError:
        pass


# MMAUDIT_FUZZ_EXAMPLES raises the count for a long local hunt; `make test` runs the default.
@settings(max_examples=int(os.environ.get("MMAUDIT_FUZZ_EXAMPLES", "300")), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(base=st.sampled_from(["closed", "live"]), mutations=st.lists(MUTATION, min_size=1, max_size=4))
def test_corrupted_journal_gives_typed_error_or_valid_prefix(bases, scratch, base, mutations):
    path = _image(scratch / "j", _mutate(bases[base], mutations))
    with watchdog():
        _read_only_paths(path)
        try:
            back = read_back(path)     # open as writer: recovery repairs, then read everything
        except journal.JournalError:
            return
        assert back.problem is None, back.problem
        assert len(back.seqs) <= RECORDS
        _read_only_paths(path)         # and what recovery left must read cleanly


def test_uncorrupted_bases_read_back_in_full(bases, tmp_path):
    timers = sum(expected_record(i).rtype == RecordType.TIMER for i in range(RECORDS))
    for name, files in bases.items():
        path = _image(tmp_path / name, files)
        with journal.Reader(str(path)) as reader:
            assert _assert_valid_prefix(list(reader)) == RECORDS
            rows = reader.read_fixed(RecordType.TIMER)
            assert len(rows) == timers > 0
            _assert_fixed_rows_valid(rows, RECORDS)
        assert read_back(path).seqs == list(range(1, RECORDS + 1))


def test_directory_that_is_not_a_journal_gives_typed_error(tmp_path):
    (tmp_path / "junk").write_bytes(b"not a journal")
    with pytest.raises(journal.JournalError):
        list(journal.Reader(str(tmp_path)))
    with pytest.raises(journal.JournalError):
        journal.Journal(str(tmp_path), create=False)
