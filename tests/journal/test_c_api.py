"""The C library stands alone: a C program compiled against journal.h and the C sources (no
Python, no OpenSSL) writes a journal that Python reads back and verifies."""
from __future__ import annotations

import pathlib
import subprocess

import pytest

from journal import Reader, RecordType, verify
from journal.catalogue import unpack
from tests.journal.jhelpers import compile_c_program

EXAMPLE = pathlib.Path(__file__).resolve().parent / "c" / "example_writer.c"


@pytest.fixture(scope="module")
def example_binary(tmp_path_factory):
    out = tmp_path_factory.mktemp("cbuild") / "example_writer"
    done = compile_c_program(EXAMPLE, out, ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror"])
    assert done.returncode == 0, done.stderr
    nm = subprocess.run(["nm", "-D", "--undefined-only", str(out)], capture_output=True, text=True)
    if nm.returncode == 0:   # the library needs nothing beyond libc
        assert "SSL" not in nm.stdout and "crypto" not in nm.stdout
    return out


def test_c_program_writes_python_reads(example_binary, tmp_path):
    d = tmp_path / "cj"
    done = subprocess.run([str(example_binary), str(d), "3000"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "next_seq=3005 batch_first=3001 range=1..3004 verify_ok=1"
    with Reader(d) as r:
        records = list(r)
    assert [rec.payload for rec in records[:3000]] == [b"c-record %d" % i for i in range(3000)]
    assert [rec.ts_ns for rec in records[:3]] == [0, 1000, 2000]
    timers = [unpack(RecordType.TIMER, rec.payload) for rec in records[3000:]]
    assert [(int(t["timer_id"]), int(t["now_ns"])) for t in timers] == [(k, 7000 + k) for k in range(4)]
    assert verify(d).ok and verify(d).segments > 1


def test_c_program_reports_a_locked_journal(example_binary, tmp_path):
    from journal import Journal
    d = tmp_path / "locked"
    with Journal(d, segment_size=65536):
        done = subprocess.run([str(example_binary), str(d), "5"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "open: journal is locked by another writer" in done.stderr
