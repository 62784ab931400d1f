"""A start that fails before the session's first record leaves no journal behind at a user-given
--journal: the clock and the venue are started before it is opened, and what its open made is
removed again (a venue that cannot be reached, a control socket path in use, whose error says
how to run without one)."""
from __future__ import annotations

import socket

from click.testing import CliRunner

from cli.run_cmd import command as run


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unreachable(journal) -> list[str]:
    return ["--venue", f"127.0.0.1:{free_tcp_port()}", "--rerequest-port", "9", "--no-ptp-lab",
            "--duration", "2s", "--journal", str(journal)]


def test_an_unreachable_venue_leaves_no_new_journal_directory(tmp_path):
    journal = tmp_path / "new" / "journal"
    result = CliRunner().invoke(run, unreachable(journal))
    assert result.exit_code == 1 and "cannot reach the venue" in result.output, result.output
    assert not (tmp_path / "new").exists()


def test_an_unreachable_venue_leaves_a_given_empty_directory_empty(tmp_path):
    journal = tmp_path / "journal"
    journal.mkdir()
    result = CliRunner().invoke(run, unreachable(journal))
    assert result.exit_code == 1, result.output
    assert list(journal.iterdir()) == []


def test_a_control_path_in_use_names_control_none_and_leaves_no_journal(tmp_path):
    path = tmp_path / "busy.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as other:
        other.bind(str(path))
        other.listen(1)               # another session answers on it
        result = CliRunner().invoke(run, ["--duration", "2s", "--no-ptp-lab", "--control", str(path),
                                          "--journal", str(tmp_path / "journal")])
    assert result.exit_code == 1 and "another session already answers" in result.output, result.output
    assert "--control none" in result.output
    assert not (tmp_path / "journal").exists()
