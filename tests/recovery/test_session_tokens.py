"""Order tokens are day-unique across sessions: every token is prefix + the session's tag (its start
in the trading day, journaled in SESSION_START) + a counter. Two sessions on one embedded venue on
one day send disjoint tokens and the venue takes both; replay reads the tag back from the journal
(the same tokens, or it diverges); a recovered session goes on with its tag and counter; a journal
whose SESSION_START predates the tag (layouts 1 and 2) replays as it was written."""
from __future__ import annotations

import datetime
import time

import numpy as np
import pytest

import journal.writer
from journal import Journal, Reader, RecordType
from journal.catalogue import EARLIER_SIZES, PAYLOAD_DTYPES, token_tag, unpack
from mm_core.config import EngineConfig
from mm_core.engine import Engine
from mm_core.oms import Oms, OmsError, base36
from mm_core.protocol import ouch, soupbintcp
from mm_core.sessiontag import TAG_TICK_NS, session_tag
from mm_core.venue.config import load_config
from mm_core.venue.server import Venue
from mm_core.venue.sessiontime import midnight_utc_ns
from recovery.errors import BadRecoveryRecord
from recovery.recover import recover
from recovery.replay import replay_journal
from recovery.venue_link import SoupSession
from tests.mm_core.wire import SYMBOLS, gateway
from tests.recovery import journaling
from tests.recovery.conftest import USER, free_udp_port
from tests.recovery.session import CONFIG, run, settings_for

START = RecordType.SESSION_START


def fresh_engine(config: EngineConfig = CONFIG) -> Engine:
    return Engine(config, SYMBOLS, gateway())


def journal_tag(path: str) -> str:
    with Reader(path) as reader:
        starts = reader.read_fixed(START)
    assert len(starts) == 1
    return token_tag(starts[0])


def sent_tokens(path: str, kinds: bytes = b"OU") -> list[str]:
    """The new tokens a journal's ORDER_SENT records carry (enter and replace), in order."""
    with Reader(path) as reader:
        rows = [unpack(RecordType.ORDER_SENT, r.payload) for r in reader.records(rtypes=[RecordType.ORDER_SENT])]
    return [row["token"].decode() for row in rows if row["msg_type"] in kinds]


def sent_before_last_answer(path: str) -> list[str]:
    """The enter tokens sent before the journal's last venue message: the venue read each of them
    while the session was still there (an order sent after it may have met a closed session). Not
    replacements: the venue ignores the replace of an order that filled meanwhile."""
    with Reader(path) as reader:
        records = list(reader.records(rtypes=[RecordType.ORDER_SENT, RecordType.VENUE_MSG]))
    last = max(r.seq for r in records if r.rtype == RecordType.VENUE_MSG)
    rows = [unpack(RecordType.ORDER_SENT, r.payload) for r in records
            if r.rtype == RecordType.ORDER_SENT and r.seq < last]
    return [row["token"].decode() for row in rows if row["msg_type"] == ord("O")]


def answered(venue: Venue, user: str) -> set[str]:
    """Tokens the venue answered for `user` with Accepted, Replaced or Rejected (an ignored
    duplicate gets no answer at all)."""
    tokens = set()
    for raw in venue.session_messages(user):
        msg = ouch.decode_outbound(raw)
        if isinstance(msg, (ouch.Accepted, ouch.Replaced, ouch.Rejected)):
            tokens.add(msg.token.strip())
    return tokens


# ------------------------------------------------------------------------------------ the tag

def test_the_tag_is_the_start_in_the_new_york_day_in_two_ms_ticks():
    day = midnight_utc_ns(datetime.date(2026, 11, 20))      # EST: 05:00 UTC
    assert session_tag(day) == "00000" and session_tag(day + TAG_TICK_NS - 1) == "00000"
    assert session_tag(day + TAG_TICK_NS) == "00001"
    at_0930 = day + (9 * 3600 + 30 * 60) * 10**9
    assert session_tag(at_0930) == base36(34_200_000 // 2, 5)
    # the autumn change: 25 hours from midnight, still five characters, still growing
    fall = midnight_utc_ns(datetime.date(2026, 11, 1))
    tags = [session_tag(fall + h * 3600 * 10**9) for h in range(25)]
    assert tags == sorted(tags) and len(set(tags)) == 25 and all(len(t) == 5 for t in tags)


def test_a_tag_goes_between_prefix_and_counter_before_the_first_token_only():
    oms = Oms("MM", lambda token: b"")
    oms.start_session("AYS0E")
    first = oms.new_token()
    assert first == "MMAYS0E0000001" and oms.counter_of(first) == 1
    assert oms.counter_of("MM00000000001") is None and oms.counter_of("MMAYS0F0000001") is None
    with pytest.raises(OmsError, match="after 1 tokens"):
        oms.start_session("AYS0F")
    with pytest.raises(OmsError, match="at most 3 characters"):
        Oms("ABCD", lambda token: b"").start_session("AYS0E")
    untagged = Oms("ABCDEFGH", lambda token: b"")      # an old journal's session: no tag, as before
    assert untagged.new_token() == "ABCDEFGH000001"


def test_a_prefix_leaving_too_short_a_counter_is_refused_before_the_session(tmp_path):
    from mm_core.sessionconfig import SessionConfigError, load_inputs
    ok, long = tmp_path / "ok.toml", tmp_path / "long.toml"
    ok.write_text('[engine]\nsession_prefix = "MMX"\n')
    long.write_text('[engine]\nsession_prefix = "MMXY"\n')
    assert load_inputs(str(ok)).engine_config.session_prefix == "MMX"
    with pytest.raises(SessionConfigError, match="leaves 5 of the token's 14 characters"):
        load_inputs(str(long))


# ------------------------------------------------------------------------------------ live sessions

@pytest.fixture
def one_venue(tmp_path):
    port = free_udp_port()
    config = load_config().with_venue(itch_port=port, duration=60.0, log_dir=str(tmp_path / "venue"),
                                      heartbeat_timeout=10.0)
    with Venue(config) as venue:
        yield venue, port


def test_two_sessions_of_one_day_send_disjoint_tokens_and_the_venue_takes_both(tmp_path, one_venue):
    """A session, then a second one (another box with the same prefix, on its own account) on the
    same venue and day: distinct tags, disjoint tokens, every order answered; and the second
    session's tokens are still free on the first one's account (the counter alone would repeat)."""
    venue, itch = one_venue
    ports = venue.ports
    first, second = str(tmp_path / "a"), str(tmp_path / "b")
    run(first, ports.ouch, itch, ports.rerequest, 3.0)
    run(second, ports.ouch, itch, ports.rerequest, 3.0, config=EngineConfig(quoted=CONFIG.quoted, firm="MMC2"),
        username="MM02", password="mmaudit2")
    tags = journal_tag(first), journal_tag(second)
    assert tags[0] != tags[1] and all(len(t) == 5 for t in tags)
    a, b = sent_tokens(first), sent_tokens(second)
    assert a and b, "both sessions traded"
    assert all(t.startswith("MM" + tags[0]) for t in a) and all(t.startswith("MM" + tags[1]) for t in b)
    assert len(set(a)) == len(a) and len(set(b)) == len(b) and not set(a) & set(b)
    # none ignored as a duplicate: the venue answered every order it read while the session was on
    assert set(sent_before_last_answer(first)) <= answered(venue, USER)
    assert set(sent_before_last_answer(second)) <= answered(venue, "MM02")
    assert sent_before_last_answer(first) and sent_before_last_answer(second)
    # on the first session's account, the second's first token is new to the venue, the first's is not
    session = SoupSession("127.0.0.1", ports.ouch)
    try:
        session.login(USER, "mmaudit", 1)
        for token in (a[0], b[0]):
            session.send(soupbintcp.encode(soupbintcp.UnsequencedData(ouch.encode(ouch.EnterOrder(
                token, "B", 100, "ACME", 1_000_000, 99999, "MMCO", "Y", "P", "N", 0, "N", "R")))))
        deadline = time.monotonic() + 5
        while b[0] not in answered(venue, USER) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        session.close()
    logged = [ouch.decode_outbound(m) for m in venue.session_messages(USER)]
    assert sum(1 for m in logged if isinstance(m, ouch.Accepted) and m.token.strip() == b[0]) == 1
    assert sum(1 for m in logged if isinstance(m, ouch.Accepted) and m.token.strip() == a[0]) == 1   # once, live
    # replay reads each journal's tag back: the same tokens, bit for bit
    for path, tag in zip((first, second), tags):
        config = CONFIG if path == first else EngineConfig(quoted=CONFIG.quoted, firm="MMC2")
        again = replay_journal(path, fresh_engine(config))
        assert again.deterministic, [d.detail for d in again.divergences[:3]]
        assert again.orders_checked >= len(sent_tokens(path)) and again.engine.oms.tag == tag


def test_a_recovered_session_goes_on_with_its_tag_and_counter(crashed_session):
    venue, path, address = crashed_session
    tag = journal_tag(path)
    before = sent_tokens(path)
    assert before and all(t.startswith("MM" + tag) for t in before)
    result = recover(settings_for(path, address))
    assert result.replay.deterministic and result.reconciled, result.reasons
    oms = result.engine.oms
    assert oms.tag == tag and oms.counter >= max(oms.counter_of(t) for t in before)
    after = sent_tokens(path)
    assert len(set(after)) == len(after) and all(t.startswith("MM" + tag) for t in after)
    following = oms.new_token()             # what the session would send next: never one it sent
    assert following.startswith("MM" + tag) and following not in set(after) | answered(venue, USER)
    assert replay_journal(path, fresh_engine()).engine.oms.tag == tag


# ------------------------------------------------------------------------------------ the journal

def rewritten(src: str, dst: str, monkeypatch, start_size: int | None = None, tag: bytes | None = None) -> None:
    """A copy of the journal at src whose SESSION_START is cut to `start_size` bytes (an earlier
    layout, as older code wrote it) or names `tag` instead."""
    with Reader(src) as reader:
        records = list(reader.records())
    with monkeypatch.context() as m:
        if start_size is not None:
            sizes = dict(PAYLOAD_DTYPES)
            sizes[START] = np.dtype((np.void, start_size))
            m.setattr(journal.writer, "PAYLOAD_DTYPES", sizes)
        with Journal(dst) as j:
            for r in records:
                payload = r.payload
                if r.rtype == START and start_size is not None:
                    payload = payload[:start_size]
                elif r.rtype == START and tag is not None:
                    payload = payload[:-8] + tag.ljust(8, b"\0")
                j.append(r.rtype, payload, r.ts_ns, r.ts_source, r.clock_state)


@pytest.mark.parametrize("size", EARLIER_SIZES[START], ids=lambda n: f"{n}-bytes")
def test_a_journal_from_before_the_tag_replays_as_written(tmp_path, monkeypatch, size):
    """An untagged session (the tokens of code before the tag) journaled with SESSION_START of
    layout 1 or 2 replays with the prefix-and-counter tokens it sent."""
    src, old = str(tmp_path / "src"), str(tmp_path / "old")
    live = journaling.write_session(src, journaling.session_events(5, 80))
    live.journal.close()
    tokens = sent_tokens(src)
    assert tokens and tokens[0] == live.engine.oms.prefix + "000000000001"
    rewritten(src, old, monkeypatch, start_size=size)
    with Reader(old) as reader:
        assert len(next(reader.records(rtypes=[START])).payload) == size
    again = replay_journal(old, journaling.fresh_engine())
    assert again.deterministic, [d.detail for d in again.divergences[:3]]
    assert again.engine.oms.tag == "" and again.state_hash == live.engine.state_hash()
    assert again.orders_checked == len(sent_tokens(old, b"OUXM"))


def test_a_tag_the_journal_does_not_name_diverges_and_a_bad_one_is_a_typed_error(tmp_path, one_venue, monkeypatch):
    venue, itch = one_venue
    ports = venue.ports
    path = str(tmp_path / "j")
    run(path, ports.ouch, itch, ports.rerequest, 2.0)
    assert sent_tokens(path)
    other = str(tmp_path / "other")
    rewritten(path, other, monkeypatch, tag=b"ZZZZZ")
    diverged = replay_journal(other, fresh_engine())
    assert not diverged.deterministic and "MMZZZZZ0000001" in diverged.divergences[0].detail
    bad = str(tmp_path / "bad")
    rewritten(path, bad, monkeypatch, tag=b"TOOLONG8")
    with pytest.raises(BadRecoveryRecord, match="leaves 4 of the token's 14"):
        replay_journal(bad, fresh_engine())
