"""The journal's writer and its helper thread under ThreadSanitizer: a C program (tests/journal/c/
group_tsan.c) appends in group durability with pauses and segment rolls while the helper thread
ticks, hashes ahead and prepares segments; any data race TSan sees fails the test."""
import pathlib
import subprocess

import pytest

from tests.journal.jhelpers import compile_c_program

PROGRAM = pathlib.Path(__file__).parent / "c" / "group_tsan.c"


@pytest.fixture(scope="module")
def tsan_writer(tmp_path_factory):
    out = tmp_path_factory.mktemp("tsan") / "group_tsan"
    done = compile_c_program(PROGRAM, out, ["-std=gnu11", "-O1", "-g", "-fsanitize=thread"])
    if done.returncode != 0 and ("unrecognized" in done.stderr or "-ltsan" in done.stderr):
        pytest.skip(f"this compiler has no ThreadSanitizer runtime: {done.stderr.strip()[:200]}")
    assert done.returncode == 0, done.stderr
    return out


def test_group_durability_has_no_data_race(tsan_writer, tmp_path):
    done = subprocess.run([str(tsan_writer), str(tmp_path / "j"), "20000"], capture_output=True, text=True,
                          timeout=300, env={"TSAN_OPTIONS": "halt_on_error=0 exitcode=66", "PATH": "/usr/bin:/bin"})
    if "unexpected memory mapping" in done.stderr:
        pytest.skip(f"ThreadSanitizer cannot run under this kernel's address layout: {done.stderr.strip()[:200]}")
    assert "ThreadSanitizer" not in done.stderr and done.returncode == 0, done.stderr[-4000:]
