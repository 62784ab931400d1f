"""`mmaudit run` without --journal journals into a new mmaudit-run-* temporary directory: a run that
fails before anything was journaled (an unreachable venue) removes it, so failed runs do not fill
/tmp with empty directories and preallocated segments; one that journaled records keeps it, and
the error output names where."""
from __future__ import annotations

import socket
import tempfile
import time

import pytest
from click.testing import CliRunner

from cli.main import cli
from journal import Reader
from mm_core.protocol import soupbintcp
from tests.mm_core.fake_venue import serve
from tests.mm_core.test_runner import free_udp_port


@pytest.fixture
def tmp_root(tmp_path, monkeypatch):
    """tempfile's directory for the test: where mmaudit-run-* directories would be left."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def run(port: int) -> object:
    return CliRunner().invoke(cli, ["run", "--venue", f"127.0.0.1:{port}", "--itch-port", str(free_udp_port()),
                                    "--rerequest-port", str(free_udp_port()), "--duration", "2s", "--no-ptp-lab"])


def test_a_run_that_journaled_nothing_leaves_no_temporary_directory(tmp_root):
    with socket.socket() as probe:        # a port nobody listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run(port)
    assert result.exit_code == 1 and "cannot reach the venue's order entry" in result.output, result.output
    assert list(tmp_root.iterdir()) == []


def test_a_run_that_journaled_records_keeps_them_and_says_where(tmp_root):
    def script(conn):
        conn.recv(1000)
        conn.sendall(soupbintcp.encode(soupbintcp.LoginRejected("A")))
        time.sleep(0.5)
    result = run(serve(script))
    assert result.exit_code == 1 and "login rejected" in result.output, result.output
    [made] = list(tmp_root.iterdir())
    assert made.name.startswith("mmaudit-run-")
    assert f"the journal of the failed run is kept in {made / 'journal'}" in result.output
    with Reader(str(made / "journal")) as reader:
        assert reader.last_seq > 0
