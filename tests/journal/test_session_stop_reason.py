"""SESSION_STOP's reason field holds 32 bytes; a longer stop reason is kept whole in a METRICS
"session-stop" record journaled just before it, which `mmaudit journal dump` shows and replay
passes over (it is no engine input)."""
from __future__ import annotations

import json

from click.testing import CliRunner

from cli.journal_cmd import command
from journal import Reader, RecordType
from journal.catalogue import STOP_NOTE, TsSource, session_stop, unpack, unpack_json

LONG = ("the venue ended the session: SoupBinTCP End of Session after 4,312 messages, "
        "logged out while 3 orders were pending")


def test_a_reason_that_fits_is_one_record_and_a_longer_one_is_kept_whole_before_it():
    assert [t for t, _ in session_stop(1, 10, 2, "duration")] == [RecordType.SESSION_STOP]
    exact = session_stop(1, 10, 2, "x" * 32)
    assert len(exact) == 1 and unpack(RecordType.SESSION_STOP, exact[0][1])["reason"] == b"x" * 32
    (note_type, note), (stop_type, stop) = session_stop(7, 10, 2, LONG)
    assert (note_type, stop_type) == (RecordType.METRICS, RecordType.SESSION_STOP)
    assert unpack_json(note) == {"note": STOP_NOTE, "session_id": 7, "reason": LONG}
    fields = unpack(RecordType.SESSION_STOP, stop)
    assert fields["reason"] == LONG.encode()[:32] and int(fields["events"]) == 10 and int(fields["orders"]) == 2


def test_journal_dump_shows_the_whole_reason_and_replay_reads_past_it(tmp_path):
    from recovery.replay import replay_journal
    from tests.recovery import journaling
    path = str(tmp_path / "j")
    live = journaling.write_session(path, journaling.session_events(2, 40))
    for rtype, payload in session_stop(1, live.inputs, 0, LONG):
        live.journal.append(rtype, payload, ts_ns=10**9, ts_source=int(TsSource.USER))
    live.journal.close()
    out = CliRunner().invoke(command, ["dump", path, "--json", "--type", "METRICS", "--type", "SESSION_STOP"],
                             catch_exceptions=False)
    assert out.exit_code == 0, out.output
    rows = [json.loads(line) for line in out.output.splitlines()]
    assert rows[-1]["type"] == "SESSION_STOP" and rows[-2]["payload"]["json"]["reason"] == LONG
    with Reader(path) as reader:
        assert reader.read_fixed(RecordType.SESSION_STOP)["reason"].tolist() == [LONG.encode()[:32]]
    again = replay_journal(path, journaling.fresh_engine())
    assert again.deterministic and again.state_hash == live.engine.state_hash()
