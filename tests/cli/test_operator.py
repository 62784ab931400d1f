"""`mmaudit operator` against a running `mmaudit run` (a real subprocess trading on the embedded
venue on loopback): kill by symbol, enable, reconcile and bad requests go through the session's
control socket, each is journaled with who asked and from which uid/pid, the socket is removed at
exit; and the request checks, the stale-socket rule and a missing session give one clear line."""
from __future__ import annotations

import json
import os
import socket

import pytest
from click.testing import CliRunner

from cli.operator_cmd import command as operator
from journal import Reader, RecordType
from journal.catalogue import unpack, unpack_json
from mm_core.control import ControlError, ControlServer, parse_request, send
from mm_core.sessionconfig import lab_available
from tests.cli.runproc import running

SYMBOLS = {"ACME": 1, "BOLT": 2}
IDS = {"algo": 7, "desk": 3, "client": 11}


def ask(journal, *args: str):
    return CliRunner().invoke(operator, [*args, "--journal", str(journal), "--actor", "alice",
                                         "--reason", "test", "--json"], catch_exceptions=False)


def test_operator_commands_reach_a_running_session_and_are_journaled(tmp_path):
    journal = tmp_path / "journal"
    answers = {}
    with running(["--duration", "90s", "--journal", str(journal)]) as run_proc:
        run_proc.read_until("operator commands:", 60)
        run_proc.read_until("[", 30)                     # the run loop is going
        answers["bad-symbol"] = ask(journal, "kill", "--scope", "symbol", "--id", "NOPE")
        answers["kill-desk"] = ask(journal, "kill", "--scope", "desk", "--id", "77")
        answers["kill-acme"] = ask(journal, "kill", "--scope", "symbol", "--id", "ACME")
        answers["enable-acme"] = ask(journal, "enable", "--scope", "symbol", "--id", "ACME")
        answers["kill"] = ask(journal, "kill")
        answers["enable"] = ask(journal, "enable")
        answers["reconcile"] = ask(journal, "reconcile")
        assert run_proc.interrupt() == 0, run_proc.err
    bad = answers["bad-symbol"]
    assert bad.exit_code == 1 and "unknown symbol 'NOPE'" in json.loads(bad.output)["error"]
    other_desk = answers["kill-desk"]          # the session's orders carry desk 1 (its config)
    assert other_desk.exit_code == 1
    assert json.loads(other_desk.output)["error"] == "unknown desk id 77; this session's orders carry desk id 1"
    scoped = json.loads(answers["kill-acme"].output)
    assert answers["kill-acme"].exit_code == 0 and scoped["ok"] and scoped["journaled"]
    assert scoped["trading_state"] != "HALTED" and scoped["kills_in_force"] == "symbol 1"   # the rest trades on
    assert scoped["origin"] == f"control socket uid {os.getuid()} pid {os.getpid()}"
    lifted = json.loads(answers["enable-acme"].output)
    assert answers["enable-acme"].exit_code == 0 and lifted["kills_in_force"] == ""
    kill = json.loads(answers["kill"].output)
    assert answers["kill"].exit_code == 0 and kill["trading_state"] == "HALTED"
    enable = json.loads(answers["enable"].output)
    if not lab_available():              # a compliant clock: nothing else keeps it halted
        assert answers["enable"].exit_code == 0 and enable["trading_state"] in ("ACTIVE", "SAFE_MODE")
    else:                                # no clock here: the gateway refuses, and says why
        assert answers["enable"].exit_code == 1 and "clock" in enable["refused"]
    recon = json.loads(answers["reconcile"].output)
    assert answers["reconcile"].exit_code == 0, recon
    assert recon["reconciliation"]["reconciled"] is True
    assert not (journal / "control.sock").exists()      # removed at exit
    with Reader(str(journal)) as reader:
        records = list(reader.records())
    commands = [unpack_json(r.payload) for r in records if r.rtype == RecordType.OPERATOR_CMD]
    assert [(c["command"], c["scope"], c["actor"]) for c in commands] == [
        ("kill", "symbol", "alice"), ("enable", "symbol", "alice"), ("kill", "all", "alice"), ("enable", "all", "alice"),
        ("kill", "all", "session")]          # the close-out's pulls at the end of the session
    assert all(c["origin"] == scoped["origin"] for c in commands[:-1]) and "origin" not in commands[-1]
    # the symbol kill's record counts exactly the cancels it sent, all of them ACME's
    first = next(i for i, r in enumerate(records) if r.rtype == RecordType.OPERATOR_CMD)
    kill_at = next(i for i in range(first, len(records)) if records[i].rtype == RecordType.KILL)
    sent = [unpack(RecordType.ORDER_SENT, r.payload) for r in records[first:kill_at] if r.rtype == RecordType.ORDER_SENT]
    symbol_kill = unpack(RecordType.KILL, records[kill_at].payload)
    assert (symbol_kill["scope"], symbol_kill["scope_id"]) == (1, 1)
    assert symbol_kill["orders_cancelled"] == len(sent) and all(o["symbol_id"] == 1 and o["msg_type"] == ord("X")
                                                                for o in sent)
    assert scoped["orders_cancelled"] == symbol_kill["orders_cancelled"]      # answered as journaled
    assert len([r for r in records if r.rtype == RecordType.KILL]) == 3
    recons = [unpack_json(r.payload) for r in records if r.rtype == RecordType.RECON]
    assert recons[0]["mid_session"] and recons[0]["actor"] == "alice"
    assert recons[0]["origin"] == scoped["origin"] and recons[-1]["kind"] == "outcome"


@pytest.mark.parametrize("doc, problem", [
    ({"command": "flatten", "actor": "a", "reason": "r"}, "unknown command"),
    ({"command": "kill", "actor": " ", "reason": "r"}, "actor must be printable"),
    ({"command": "kill", "actor": "a", "reason": "x\x00"}, "reason must be printable"),
    ({"command": "reconcile", "actor": "a", "reason": "r", "scope": "symbol", "scope_id": 1}, "kill and enable only"),
    ({"command": "kill", "actor": "ÄÖÜäöüßéè", "reason": "r"}, "actor is 18 bytes in UTF-8, over the 16"),
    ({"command": "kill", "actor": "a", "reason": "ü" * 33}, "reason is 66 bytes in UTF-8, over the 64"),
    ({"command": "kill", "actor": "a", "reason": "r", "scope": "venue"}, "unknown kill scope"),
    ({"command": "kill", "actor": "a", "reason": "r", "scope": "desk", "scope_id": "x"}, "scope_id must be"),
    ({"command": "kill", "actor": "a", "reason": "r", "scope": "all", "scope_id": 3}, "scope all takes no"),
    # a numeric symbol id this session does not trade: journaled, it would cancel nothing
    ({"command": "kill", "actor": "a", "reason": "r", "scope": "symbol", "scope_id": 999}, "unknown symbol id 999"),
    ({"command": "enable", "actor": "a", "reason": "r", "scope": "symbol", "scope_id": 4_000_000_000},
     "unknown symbol id 4000000000"),
    (["kill"], "JSON object"),
    # an algo, desk or client id the session's orders do not carry: journaled, it would cancel
    # nothing and answer "done"
    ({"command": "kill", "actor": "a", "reason": "r", "scope": "desk", "scope_id": 77},
     "unknown desk id 77; this session's orders carry desk id 3"),
    ({"command": "kill", "actor": "a", "reason": "r", "scope": "algo", "scope_id": 3},
     "unknown algo id 3; this session's orders carry algo id 7"),
    ({"command": "enable", "actor": "a", "reason": "r", "scope": "client", "scope_id": 0},
     "unknown client id 0; this session's orders carry client id 11"),
    # the system's own actors: recovery releases the session's close-out kill, never one signed so
    ({"command": "kill", "actor": "session", "reason": "session end"}, "actor 'session' is the system's own"),
    ({"command": "enable", "actor": " recovery ", "reason": "r"}, "actor 'recovery' is the system's own"),
    ({"command": "release-close-out", "actor": "a", "reason": "r"}, "unknown command 'release-close-out'"),
])
def test_bad_requests_are_refused_with_their_reason(doc, problem):
    with pytest.raises(ControlError, match=problem):
        parse_request(doc, SYMBOLS, IDS)


def test_ids_the_session_does_not_carry_are_refused_and_its_own_taken():
    for scope, own in IDS.items():
        doc = {"command": "kill", "actor": "a", "reason": "r", "scope": scope, "scope_id": own}
        assert parse_request(doc, SYMBOLS, IDS) == ("kill", "a", "r", scope, own)
        with pytest.raises(ControlError, match=f"this session's orders carry no {scope} id"):
            parse_request(doc, SYMBOLS)         # no ids given: none is carried


def test_a_symbol_kill_may_name_the_symbol():
    assert parse_request({"command": "kill", "actor": "a", "reason": "r", "scope": "symbol",
                          "scope_id": "BOLT"}, SYMBOLS) == ("kill", "a", "r", "symbol", 2)
    assert parse_request({"command": "enable", "actor": "a", "reason": "r", "scope": "symbol",
                          "scope_id": "BOLT"}, SYMBOLS) == ("enable", "a", "r", "symbol", 2)
    assert parse_request({"command": "kill", "actor": "a", "reason": "r", "scope": "symbol",
                          "scope_id": 2}, SYMBOLS) == ("kill", "a", "r", "symbol", 2)


def test_texts_that_fill_their_journal_fields_exactly_are_taken_whole():
    actor, reason = "ÄÖÜäöüßé", "ü" * 32                     # 16 and 64 bytes
    assert parse_request({"command": "kill", "actor": actor, "reason": reason}, SYMBOLS)[1:3] == (actor, reason)


class _Receipt:
    journaled, refusal, reconciliation = True, "", None

    def wait(self, _timeout):
        return True


def test_a_stale_socket_is_replaced_and_a_live_one_refused(tmp_path):
    path = str(tmp_path / "control.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)                 # what a SIGKILLed session leaves: a socket file nobody serves
    stale.close()
    submitted = []
    status = lambda: {"trading_state": "ACTIVE", "faults": []}          # noqa: E731
    with ControlServer(path, lambda c: submitted.append(c) or _Receipt(), status, symbols=SYMBOLS):
        assert oct(os.stat(path).st_mode & 0o777) == "0o600"
        with pytest.raises(ControlError, match="another session already answers"):
            ControlServer(path, submitted.append, status).start()
        answer = send(path, {"command": "enable", "actor": "bob", "reason": "r"}, 10)
        assert answer["ok"] and answer["trading_state"] == "ACTIVE"
        assert [(c.command, c.actor) for c in submitted] == [("enable", "bob")]
        garbage = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        garbage.connect(path)
        garbage.sendall(b"{not json\n")
        assert b"not JSON" in garbage.recv(4096)
        garbage.close()
    assert not os.path.exists(path)
    assert len(submitted) == 1                                  # the bad one never reached it


def test_no_session_is_one_line_and_usage_errors_exit_2(tmp_path):
    result = CliRunner().invoke(operator, ["kill", "--journal", str(tmp_path), "--actor", "a", "--reason", "r"])
    assert result.exit_code == 1 and "no session is listening on" in result.output
    both = CliRunner().invoke(operator, ["kill", "--journal", str(tmp_path), "--control", "x",
                                         "--actor", "a", "--reason", "r"])
    assert both.exit_code == 2 and "one of them" in both.output
    scope = CliRunner().invoke(operator, ["reconcile", "--journal", str(tmp_path), "--actor", "a", "--reason", "r",
                                          "--scope", "symbol", "--id", "ACME"])
    assert scope.exit_code == 2 and "kill and enable only" in scope.output
    long_path = "/tmp/" + "x" * 120
    too_long = CliRunner().invoke(operator, ["kill", "--control", long_path, "--actor", "a", "--reason", "r"])
    assert too_long.exit_code == 1 and "over the 107 a Unix socket allows" in too_long.output


def test_run_refuses_a_control_path_no_socket_can_have_before_writing_anything(tmp_path):
    from cli.run_cmd import command as run
    journal = tmp_path / "journal"
    result = CliRunner().invoke(run, ["--duration", "1s", "--journal", str(journal), "--no-ptp-lab",
                                      "--control", "/tmp/" + "y" * 120])
    assert result.exit_code == 1 and "over the 107 a Unix socket allows" in result.output
    assert not journal.exists()                   # refused before the journal was opened
