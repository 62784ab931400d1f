"""The lean append entry point (journal/_fastappend.c): same records, same typed errors, and the GIL
kept only where nothing an append can wait for needs it."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from journal import Journal, Reader, RecordType
from journal._fastappend import Appender
from journal._journal_cffi import ffi, lib
from journal.errors import JournalClosed, error_for

from .jhelpers import SMALL_SEGMENT

MD = int(RecordType.MD_PACKET)


@pytest.mark.parametrize("durability, kept", [("pagecache", True), ("group", False), ("sync", False)])
def test_the_gil_is_kept_only_in_pagecache_mode_without_a_sync_hook(tmp_path, durability, kept):
    with Journal(tmp_path / "j", segment_size=SMALL_SEGMENT, durability=durability) as j:
        assert j._fast_append.keep_gil is kept and j._fast_reserve.keep_gil is kept
        j.on_sync(lambda *a: None)   # a Python hook runs inside an append with the writer's lock held
        assert not j._fast_append.keep_gil and not j._fast_reserve.keep_gil
        j.on_sync(None)
        assert j._fast_append.keep_gil is kept and j._fast_reserve.keep_gil is kept


def test_every_argument_form_writes_the_record_it_names(tmp_path):
    forms = [   # (rtype, payload, ts_ns, ts_source, clock_state): exact types, then ones only the converting path takes
        (MD, b"plain", 5, 2, 1),
        (MD, b"", -(1 << 63), 0, 0),
        (MD, bytearray(b"a bytearray"), (1 << 63) - 1, 255, 255),
        (MD, memoryview(b"xxa memoryviewxx")[2:-2], 7, 3, 2),
        (np.uint16(MD), b"numpy ints", np.int64(-9), np.uint8(1), np.uint8(2)),
        (RecordType.MD_PACKET, b"enum type", True, 1, False),
    ]
    with Journal(tmp_path / "j", segment_size=SMALL_SEGMENT) as j:
        seqs = [j.append(*form) for form in forms]
        seqs.append(j.append(MD, b"reserve path", 11, 1, 1, reserve=True))
    assert seqs == list(range(1, len(forms) + 2))
    with Reader(tmp_path / "j") as r:
        got = [(rec.rtype, bytes(rec.payload), rec.ts_ns, rec.ts_source, rec.clock_state) for rec in r]
    want = [(int(t), bytes(p), int(ts), int(src), int(state)) for t, p, ts, src, state in forms]
    assert got == want + [(MD, b"reserve path", 11, 1, 1)]


def _c_error(j, *args):
    """The typed error the C function's own status maps to, called through cffi (the reference)."""
    rtype, payload, ts, src, state = args
    status = lib.mmj_append(j._w, rtype, payload, len(payload), ts, src, state)
    assert status < 0
    return type(error_for(status, "reference"))


@pytest.mark.parametrize("args", [(0, b"x", 0, 0, 0), (int(RecordType.CHECKPOINT), b"x", 0, 0, 0),
                                  (70000, b"x", 0, 0, 0), (MD, b"x", 0, 300, 0), (MD, b"x", 0, 0, 256),
                                  (int(RecordType.TIMER), b"wrong size", 0, 0, 0)])
def test_errors_the_c_function_reports_are_the_same_typed_errors(tmp_path, args):
    with Journal(tmp_path / "j", segment_size=SMALL_SEGMENT) as j:
        want = _c_error(j, *args)
        raw = j._fast_append(*args)
        assert raw < 0 and type(error_for(raw, "fast")) is want
        with pytest.raises(want):
            j.append(*args)
        assert j.next_seq == 1


def test_arguments_outside_the_c_parameters_are_left_to_the_converting_path(tmp_path):
    with Journal(tmp_path / "j", segment_size=SMALL_SEGMENT) as j:
        for args, exc in [((1 << 32, b"x", 0, 0, 0), OverflowError), ((-1, b"x", 0, 0, 0), OverflowError),
                          ((MD, b"x", 1 << 63, 0, 0), OverflowError), ((MD, b"x", 0, -1, 0), OverflowError),
                          ((MD, "text", 0, 0, 0), TypeError), ((MD, b"x", 1.5, 0, 0), TypeError),
                          ((MD, b"x", 0, 0), TypeError)]:
            with pytest.raises(exc):
                j._fast_append(*args)
        with pytest.raises(TypeError):
            j._fast_append(MD, b"x", 0, 0, clock_state=0)
        assert j.next_seq == 1


def test_a_closed_journal_detaches_its_appenders(tmp_path):
    j = Journal(tmp_path / "j", segment_size=SMALL_SEGMENT)
    fast = j._fast_append
    j.append(MD, b"x")
    j.close()
    assert fast(MD, b"y", 0, 0, 0) == lib.MMJ_E_CLOSED   # never the freed writer
    with pytest.raises(JournalClosed):
        j.append(MD, b"y")
    with pytest.raises(ValueError):
        Appender(0, 0, True)


def test_threads_appending_with_the_gil_kept_beside_a_batch_that_releases_it(tmp_path):
    """Single appends holding the GIL wait for the writer's lock while a batch holds it without the
    GIL; with a sync hook set (which takes the GIL under the writer's lock) every append releases
    it. Every record lands once and nothing hangs. (The hang the switch prevents needs an append to
    reach the lock inside the microsecond a sync holds it: too rare to provoke on demand.)"""
    per_thread, batches, batch = 3000, 60, 50
    for hook in (False, True):
        path = tmp_path / f"j{hook}"
        synced = []
        with Journal(path, segment_size=SMALL_SEGMENT) as j:
            if hook:
                j.on_sync(lambda seg, start, stop: synced.append(stop))
            errors = []

            def singles(k):
                try:
                    for i in range(per_thread):
                        j.append(MD, b"s%d-%d" % (k, i))
                except Exception as exc:   # surfaced below
                    errors.append(exc)

            def batcher():
                try:
                    for b in range(batches):
                        j.append_batch(MD, [b"b%d-%d" % (b, i) for i in range(batch)])
                        if hook:
                            j.sync()
                except Exception as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=singles, args=(k,)) for k in range(3)] + [threading.Thread(target=batcher)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=120)
            assert not any(t.is_alive() for t in threads), "appends deadlocked"
            assert not errors
        with Reader(path) as r:
            payloads = [bytes(rec.payload) for rec in r]
        assert len(payloads) == len(set(payloads)) == 3 * per_thread + batches * batch
        assert not hook or synced
