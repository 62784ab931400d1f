"""Reconciliation cases, one per discrepancy kind, from real encoded OUCH bytes and a real engine
(the scripted venue of tests.mm_core.wire answers it); each resolution is applied to the engine and
a second reconciliation must come out clean."""
from __future__ import annotations

import pathlib

import pytest

from journal import Journal, RecordType
from journal.catalogue import pack_json, unpack_json
from mm_core.events import OperatorCommand, Reconciled, SendOrder, VenueMessage
from mm_core.oms import OrderState
from mm_core.protocol import ouch, soupbintcp
from mm_core.types import Purpose, Side
from recovery.errors import BadRecoveryRecord, BadVenueMessage
from recovery.reconcile import (
    AdoptModify, AdoptPending, CancelAtVenue, Deliver, MarkNotSent, ResendCancel, apply, local_view, reconcile,
    reported_corrections, resolution_from_json, resolution_json, venue_view,
)
from recovery.replay import RECON_BEGIN, RECON_FINDING, RECON_OUTCOME, replay_journal
from tests.recovery import journaling
from tests.mm_core.wire import ACME, S, Feed, Venue, make_engine, md, run, two_sided

NOW = 3 * S


class LoggingVenue(Venue):
    """The scripted venue, keeping every OUCH payload it sent in sequence order."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[bytes] = []

    def answer(self, actions, now, ack=True):
        replies = super().answer(actions, now, ack)
        self.log += [r.packet[3:] for r in replies]
        return replies

    def fill(self, token, qty, now, price=None):
        reply = super().fill(token, qty, now, price)
        self.log.append(reply.packet[3:])
        return reply

    def view(self, *extra: bytes, log: list[bytes] | None = None):
        return venue_view(enumerate([*(self.log if log is None else log), *extra], 1))


def quoting():
    """An engine with a bid and an ask resting on ACME, both accepted."""
    engine, venue, feed = make_engine(), LoggingVenue(), Feed()
    msgs, _ = two_sided(feed, ACME, 999_900, 1_000_100)
    run(engine, venue, md(feed.packet(*msgs), 2 * S), 2 * S)
    bid = engine.oms.working_order(ACME, Side.BUY)
    ask = engine.oms.working_order(ACME, Side.SELL)
    assert bid.state is ask.state is OrderState.ACCEPTED
    return engine, venue, bid, ask


def local(engine, venue, *extra_journaled: int):
    return local_view(engine, [*range(1, len(venue.log) + 1), *extra_journaled])


def kinds(result) -> list[str]:
    return sorted(d.kind for d in result.discrepancies)


def frame(payload: bytes) -> bytes:
    return soupbintcp.encode(soupbintcp.SequencedData(payload))


def accepted(token: str, side="B", shares=300, price=999_000, ref=77) -> bytes:
    return ouch.encode(ouch.Accepted(NOW, token, side, shares, "ACME", price, 99999, "MMCO", "Y", ref,
                                     "P", "N", 0, "N", "L", " "))


def test_a_consistent_session_is_clean():
    engine, venue, bid, _ = quoting()
    run(engine, venue, venue.fill(bid.token, 100, NOW), NOW)
    result = reconcile(local(engine, venue), venue.view())
    assert result.clean and result.discrepancies == ()
    assert result.local_positions == result.venue_positions == {"ACME": 100}
    assert result.live_at_venue == 2


def test_orders_in_flight_at_the_crash_are_marked_not_sent():
    engine, venue, feed = make_engine(), LoggingVenue(), Feed()
    msgs, _ = two_sided(feed, ACME, 999_900, 1_000_100)
    sent = [a for a in engine.on_event(md(feed.packet(*msgs), 2 * S)) if isinstance(a, SendOrder)]
    assert len(sent) == 2                          # journaled, never reached the venue
    result = reconcile(local(engine, venue), venue.view())
    assert kinds(result) == ["not-received", "not-received"]
    assert {r.token for r in result.resolutions} == {a.intent.token for a in sent}
    for r in result.resolutions:
        assert isinstance(r, MarkNotSent) and apply(engine, r, NOW) == []
    assert all(engine.oms.get(a.intent.token).state is OrderState.REJECTED for a in sent)
    assert engine.oms.counts() == (0, 0)
    assert reconcile(local(engine, venue), venue.view()).clean


def test_a_live_order_unknown_locally_is_adopted_and_cancelled():
    engine, venue, _, _ = quoting()
    ours = engine.oms.prefix + "0000000000ZZ"     # one of our tokens the journal lost
    stranger = accepted(ours, shares=300, ref=77)
    result = reconcile(local(engine, venue, len(venue.log) + 1), venue.view(stranger))
    assert kinds(result) == ["unknown-live"]
    cancel = result.resolutions[0]
    assert cancel == CancelAtVenue(ours, ACME, "B", 999_000, 300, 77, True)
    (action,) = apply(engine, cancel, NOW)
    msg = ouch.decode_inbound(soupbintcp.decode(action.packet).payload)
    assert msg == ouch.CancelOrder(ours, 0) and action.intent.purpose is Purpose.RECOVERY
    order = engine.oms.get(ours)
    assert order.state is OrderState.PENDING_CANCEL and order.leaves == 300
    assert engine.oms.new_token() > ours             # that token is never handed out again
    # counted by the gateway as the venue holds it until its cancel is answered, then released
    assert engine.risk.working_orders()[ours] == (ACME, True, 300, 999_000)
    engine.on_event(VenueMessage(frame(ouch.encode(ouch.Canceled(NOW, ours, 300, "U"))), NOW))
    done = venue.view(stranger, ouch.encode(ouch.Canceled(NOW, ours, 300, "U")))
    assert engine.oms.get(ours).state is OrderState.CANCELED
    assert ours not in engine.risk.working_orders()
    assert reconcile(local(engine, venue, len(venue.log) + 1, len(venue.log) + 2), done).clean


def test_an_order_adopted_during_recovery_is_cancelled_when_it_rests():
    engine, venue, _, _ = quoting()
    token = engine.oms.prefix + "000000000100"
    apply(engine, AdoptPending(token, ACME, "T", 1_001_000, 200), NOW)     # a sell while flat: short
    assert engine.oms.get(token).state is OrderState.PENDING_NEW
    late = accepted(token, side="T", shares=200, price=1_001_000, ref=91)
    engine.on_event(VenueMessage(frame(late), NOW))
    result = reconcile(local(engine, venue, len(venue.log) + 1), venue.view(late))
    assert kinds(result) == ["unknown-live"] and result.resolutions[0].adopt is False


def test_filled_locally_but_live_at_the_venue_is_cancelled_and_the_position_flagged():
    engine, venue, bid, _ = quoting()
    run(engine, venue, venue.fill(bid.token, 200, NOW), NOW)
    assert engine.oms.get(bid.token).state is OrderState.FILLED
    index = next(i for i, p in enumerate(venue.log) if isinstance(ouch.decode_outbound(p), ouch.Executed))
    log = list(venue.log)
    log[index] = ouch.encode(ouch.Executed(NOW, bid.token, 100, bid.price, "A", 1))
    result = reconcile(local(engine, venue), venue.view(log=log))
    assert kinds(result) == ["closed-locally-live", "position-mismatch"]
    cancel = next(d.resolution for d in result.discrepancies if d.kind == "closed-locally-live")
    assert cancel.adopt and cancel.leaves == 100
    position = next(d for d in result.discrepancies if d.kind == "position-mismatch")
    assert position.resolution is None and "200" in position.detail and "100" in position.detail
    (action,) = apply(engine, cancel, NOW)          # the closed record is superseded
    assert engine.oms.get(bid.token).state is OrderState.PENDING_CANCEL


@pytest.mark.parametrize("field,kind", [("shares", "qty-mismatch"), ("price", "price-mismatch")])
def test_quantity_or_price_mismatch_is_flagged_and_the_order_cancelled(field, kind):
    engine, venue, _, ask = quoting()
    index = next(i for i, p in enumerate(venue.log) if ouch.decode_outbound(p).token == ask.token)
    original = ouch.decode_outbound(venue.log[index])
    changed = {"shares": ask.qty + 100} if field == "shares" else {"price": ask.price + 100}
    log = list(venue.log)
    log[index] = accepted(ask.token, "S", changed.get("shares", original.shares),
                          changed.get("price", original.price), original.order_ref)
    result = reconcile(local(engine, venue), venue.view(log=log))
    assert kinds(result) == [kind]
    cancel = result.resolutions[0]
    assert isinstance(cancel, CancelAtVenue) and not cancel.adopt and cancel.token == ask.token
    (action,) = apply(engine, cancel, NOW)
    assert action.packet == engine.oms.get(ask.token).cancel_packet


def test_a_fill_the_journal_lacks_is_delivered_and_booked():
    engine, venue, bid, _ = quoting()
    journaled = local(engine, venue)
    missed = ouch.encode(ouch.Executed(NOW, bid.token, 100, bid.price, "A", 4242))
    venue.log.append(missed)                          # the venue sent it; the journal lacks it
    result = reconcile(journaled, venue.view())
    assert kinds(result) == ["missing-fill"]          # positions wait for the delivery
    deliver = result.resolutions[0]
    assert deliver == Deliver(len(venue.log), missed)
    assert apply(engine, deliver, NOW) == []          # the recovery shell journals and feeds it
    run(engine, venue, VenueMessage(frame(deliver.payload), NOW), NOW)
    after = reconcile(local(engine, venue), venue.view())
    assert after.clean and after.local_positions == {"ACME": 100}


def test_an_unanswered_order_already_cancelled_by_a_latch_is_marked_not_sent():
    """Killed between an entry's append and its send; the restart's latch then pulled the order
    (cancel sent, never answered): the venue has no message about it, so it was never received."""
    engine, venue, feed = make_engine(), LoggingVenue(), Feed()
    msgs, _ = two_sided(feed, ACME, 999_900, 1_000_100)
    sent = [a for a in engine.on_event(md(feed.packet(*msgs), 2 * S)) if isinstance(a, SendOrder)]
    pulled = [a for a in engine.on_event(OperatorCommand(NOW, "kill", "ops", "drill")) if isinstance(a, SendOrder)]
    assert {a.intent.token for a in pulled} == {a.intent.token for a in sent}
    assert all(engine.oms.get(a.intent.token).state is OrderState.PENDING_CANCEL for a in sent)
    result = reconcile(local(engine, venue), venue.view())
    assert kinds(result) == ["not-received", "not-received"]
    for r in result.resolutions:
        assert isinstance(r, MarkNotSent) and apply(engine, r, NOW) == []
    assert all(engine.oms.get(a.intent.token).state is OrderState.REJECTED for a in sent)
    assert reconcile(local(engine, venue), venue.view()).clean


def test_a_cancel_that_never_reached_the_venue_is_sent_again():
    engine, venue, bid, ask = quoting()
    sent = [a for a in engine.on_event(OperatorCommand(NOW, "kill", "ops", "drill"))
            if isinstance(a, SendOrder)]
    assert {a.intent.token for a in sent} == {bid.token, ask.token}
    result = reconcile(local(engine, venue), venue.view())
    assert kinds(result) == ["cancel-not-received", "cancel-not-received"]
    assert all(isinstance(r, ResendCancel) for r in result.resolutions)
    again = [apply(engine, r, NOW)[0].packet for r in result.resolutions]
    assert sorted(again) == sorted(a.packet for a in sent)


def test_an_order_the_venue_never_saw_and_a_journal_ahead_of_the_venue_need_a_person():
    engine, venue, _, ask = quoting()
    assert ouch.decode_outbound(venue.log[-1]).token == ask.token
    result = reconcile(local(engine, venue), venue.view(log=venue.log[:-1]))
    assert kinds(result) == ["journal-ahead", "unknown-at-venue"]
    assert result.resolutions == [] and len(result.unresolved) == 2


def test_trade_corrections_and_reported_positions_are_checked():
    engine, venue, bid, _ = quoting()
    run(engine, venue, venue.fill(bid.token, 100, NOW), NOW)
    broken = ouch.encode(ouch.BrokenTrade(NOW, bid.token, venue.match, "E"))
    result = reconcile(local(engine, venue, len(venue.log) + 1), venue.view(broken),
                       venue_positions={"ACME": 300})
    assert kinds(result) == ["position-mismatch", "trade-correction"]
    assert result.resolutions == []


def _broken_trade_session():
    """A quoting engine whose bid was filled, and the venue's view with that trade then broken
    (the break at the last venue sequence, the journal holding it)."""
    engine, venue, bid, _ = quoting()
    run(engine, venue, venue.fill(bid.token, 100, NOW), NOW)
    venue.log.append(ouch.encode(ouch.BrokenTrade(NOW, bid.token, venue.match, "E")))
    return engine, venue, bid, len(venue.log)


def test_a_trade_correction_is_reported_by_the_first_recovery_only():
    """A broken trade needs a person: the first recovery that finds it reports it (trading stays
    HALTED). Its RECON outcome record names it; a later recovery, whose full view from sequence 1
    still holds the break, lists it as reported there instead of halting on it again."""
    engine, venue, bid, broken_seq = _broken_trade_session()
    first = reconcile(local(engine, venue), venue.view())
    assert kinds(first) == ["trade-correction"] and first.reported_earlier == ()
    assert first.corrections == [broken_seq]
    assert reported_corrections({"kind": "outcome", "corrections_reported": first.corrections}) == [broken_seq]
    # a finding names it but reports nothing; nor does an outcome that names none (or junk)
    assert reported_corrections(first.to_json()) == []
    assert reported_corrections({"corrections_reported": 5}) == []
    assert reported_corrections({"corrections_reported": ["7", True, None]}) == []
    later = reconcile(local_view(engine, range(1, broken_seq + 1), corrections_reported={broken_seq: 812}),
                      venue.view())
    assert later.clean and later.reported_earlier == ((broken_seq, bid.token, "BrokenTrade", 812),)
    assert later.to_json()["corrections_reported_earlier"] == [
        {"sequence": broken_seq, "token": bid.token, "what": "BrokenTrade", "reported_in": 812}]
    # another correction, not reported before, still is
    venue.log.append(ouch.encode(ouch.BrokenTrade(NOW, bid.token, venue.match + 1, "E")))
    again = reconcile(local_view(engine, range(1, broken_seq + 2), corrections_reported={broken_seq: 812}),
                      venue.view())
    assert [d.venue["sequence"] for d in again.discrepancies] == [broken_seq + 1]


def test_the_corrections_a_journal_reports_survive_replay_and_snapshots(tmp_path):
    """Which corrections were reported comes from the journal: replay collects them from RECON
    outcome records of attempts that finished with them in their reasons (also across a resume
    from a snapshot taken after one). A finding alone (the attempt SIGKILLed after it) or followed
    by a failed outcome (it named only its error) showed the correction to nobody: not reported."""
    engine, venue, _, broken_seq = _broken_trade_session()
    found = reconcile(local(engine, venue), venue.view())
    finding = {"kind": RECON_FINDING, "round": 1, **found.to_json()}
    failed = {"kind": RECON_OUTCOME, "reconciled": False, "reasons": ["recovery failed: VenueUnavailable: gone"],
              "error": {"type": "VenueUnavailable", "message": "gone"}}
    finished = {"kind": RECON_OUTCOME, "reconciled": False, "reasons": [d.detail for d in found.discrepancies],
                "corrections_reported": found.corrections}
    path, snaps = str(tmp_path / "j"), str(tmp_path / "snaps")
    events = journaling.session_events(5, 200)
    with Journal(path, checkpoint_every=64) as journal:
        shell = journaling.RunnerLike(journaling.fresh_engine(), journal)
        shell.start(events[0].now_ns)

        def recon(doc: dict, at: int) -> int:
            """Journal a RECON record, then feed what replay feeds for it (as recovery does)."""
            now = events[at].now_ns
            seq = journal.append(RecordType.RECON, pack_json(doc), ts_ns=now, ts_source=1)
            if doc["kind"] in (RECON_BEGIN, RECON_OUTCOME):
                shell.act(shell.engine.on_event(Reconciled(now, bool(doc["reconciled"]))), now)
            return seq
        for event in events[:40]:
            shell.feed(event)
        recon({"kind": RECON_BEGIN, "reconciled": False}, 39)
        recon(finding, 39)                               # then SIGKILLed: no outcome
        for event in events[40:60]:
            shell.feed(event)
        recon({"kind": RECON_BEGIN, "reconciled": False}, 59)
        recon(finding, 59)
        failed_seq = recon(failed, 59)                   # failed after its finding
        for event in events[60:100]:
            shell.feed(event)
        recon_seq = recon(finished, 99)                  # an attempt that finished with it
        for event in events[100:]:
            shell.feed(event)
    unreported = replay_journal(path, journaling.fresh_engine(), last_seq=recon_seq - 1)
    assert unreported.deterministic and unreported.recon_records == 5 and unreported.last_seq > failed_seq
    assert unreported.corrections_reported == {}
    assert kinds(reconcile(local_view(engine, range(1, broken_seq + 1),
                                      corrections_reported=unreported.corrections_reported),
                           venue.view())) == ["trade-correction"]
    full = replay_journal(path, journaling.fresh_engine(), snapshot_every=40, snapshots=snaps)
    assert full.deterministic and full.corrections_reported == {broken_seq: recon_seq}
    resumed = replay_journal(path, journaling.fresh_engine(), snapshots=snaps)
    assert resumed.snapshot and int(pathlib.Path(resumed.snapshot).name[7:27]) > recon_seq
    assert resumed.corrections_reported == {broken_seq: recon_seq}
    assert reconcile(local_view(engine, range(1, broken_seq + 1), corrections_reported=resumed.corrections_reported),
                     venue.view()).clean


def test_bad_venue_input_is_a_typed_error_naming_the_sequence():
    with pytest.raises(BadVenueMessage, match="venue message 2"):
        venue_view([(1, ouch.encode(ouch.SystemEvent(NOW, "S"))), (2, b"Qgarbage")])
    with pytest.raises(BadVenueMessage, match="gap"):
        venue_view([(1, ouch.encode(ouch.SystemEvent(NOW, "S"))), (3, ouch.encode(ouch.SystemEvent(NOW, "E")))])


@pytest.mark.parametrize("resolution", [
    MarkNotSent("MM0000000000001"), ResendCancel("MM000000000002"),
    CancelAtVenue("MM000000000003", ACME, "S", 1_000_100, 200, 9, True),
    Deliver(17, accepted("MM000000000004")), AdoptPending("MM000000000005", ACME, "B", 999_900, 100),
    AdoptModify("MM000000000006", ACME, "T", 1_000_100, 300, 100),
])
def test_resolutions_survive_the_journal_as_json(resolution):
    doc = unpack_json(pack_json({"kind": "resolution", "resolution": resolution_json(resolution)}))
    assert resolution_from_json(doc["resolution"]) == resolution


def test_a_resolution_document_with_bad_fields_is_a_typed_error():
    with pytest.raises(BadRecoveryRecord):
        resolution_from_json({"action": "cancel", "token": "X"})
    with pytest.raises(BadRecoveryRecord):
        resolution_from_json({"action": "deliver", "sequence": 1, "payload": "zz"})


# our ask was entered while flat: the venue holds it, and so its replacement, marked short (T)
def replaced(token: str, previous: str, side="T", shares=200, price=1_001_000, ref=93) -> bytes:
    return ouch.encode(ouch.Replaced(NOW, token, side, shares, "ACME", price, 99999, "MMCO", "Y", ref,
                                     "P", "N", 0, "N", "L", previous, " "))


@pytest.mark.parametrize("cancelling", [False, True])
def test_a_replacement_the_journal_lost_is_adopted_before_the_venue_confirms_it(cancelling):
    engine, venue, _, ask = quoting()
    if cancelling:      # recovery already asked to pull it when the venue's Replaced arrives
        engine.on_event(OperatorCommand(NOW, "kill", "ops", "drill"))
        assert engine.oms.get(ask.token).state is OrderState.PENDING_CANCEL
    token = engine.oms.prefix + "000000000200"
    apply(engine, AdoptPending(token, ACME, "T", 1_001_000, 200, ask.token), NOW)
    expected = OrderState.UNKNOWN if cancelling else OrderState.PENDING_REPLACE
    assert engine.oms.get(ask.token).state is expected
    # the gateway holds it as a replace in flight: both orders (the original may fill before the
    # replace lands, which then rests in full), at the new price
    assert engine.risk.working_orders()[token] == (ACME, False, ask.leaves + 200, 1_001_000)
    assert ask.token not in engine.risk.working_orders()
    engine.on_event(VenueMessage(frame(replaced(token, ask.token)), NOW))
    assert engine.counts["halts"] == 0
    assert engine.oms.get(ask.token).state is OrderState.REPLACED
    new = engine.oms.get(token)
    assert new.state is OrderState.ACCEPTED and new.purpose is Purpose.RECOVERY and new.leaves == 200
    assert engine.risk.working_orders()[token] == (ACME, False, 200, 1_001_000)


def test_an_invalid_replace_the_venue_answered_by_canceling_the_original_reconciles_clean():
    """OUCH: an invalid replace of a live order cancels it and no answer names the replacement.
    A crash before that Canceled reached us: the replacement is not received, the Canceled is
    delivered, and the OMS and the gateway end with neither order."""
    from mm_core.types import OrderKind, make_intent
    engine, venue, bid, _ = quoting()
    actions: list = []
    assert engine._submit(make_intent(OrderKind.REPLACE, engine.oms.new_token(), ACME, Side.BUY,
                                      bid.price - 100, bid.leaves, engine.ids, orig_token=bid.token),
                          actions)
    (replace,) = [a for a in actions if isinstance(a, SendOrder)]
    token = replace.intent.token
    canceled = ouch.encode(ouch.Canceled(NOW, bid.token, bid.leaves, "U"))
    result = reconcile(local(engine, venue), venue.view(canceled))
    assert {type(r).__name__ for r in result.resolutions} == {"Deliver", "MarkNotSent"}
    for r in result.resolutions:
        if isinstance(r, Deliver):
            engine.on_event(VenueMessage(frame(r.payload), NOW))
        else:
            assert apply(engine, r, NOW) == []
    assert engine.oms.get(bid.token).state is OrderState.CANCELED
    assert engine.oms.get(token).state is OrderState.REJECTED
    working = engine.risk.working_orders()
    assert bid.token not in working and token not in working
    # (the requote after the Canceled is a new enter, in flight: not these two orders)
    again = reconcile(local(engine, venue, len(venue.log) + 1), venue.view(canceled))
    assert not {d.token for d in again.discrepancies} & {bid.token, token}, again.discrepancies


def test_a_size_down_the_journal_lost_is_adopted_before_the_venue_confirms_it():
    """A resting order the venue modified with no modify of it journaled: once adopted, the OMS
    takes the venue's Order Modified (new size and side byte) and the gateway counts that size."""
    engine, venue, bid, _ = quoting()
    leaves = bid.leaves
    apply(engine, AdoptModify(bid.token, ACME, "B", bid.price, leaves, leaves - 100), NOW)
    assert bid.state is OrderState.PENDING_MODIFY and bid.modify_sent
    # counted as it rests until the venue's answer confirms the size-down
    assert engine.risk.working_orders()[bid.token] == (ACME, True, leaves, bid.price)
    engine.on_event(VenueMessage(frame(ouch.encode(ouch.OrderModified(NOW, bid.token, "B", leaves - 100))), NOW))
    assert engine.counts["halts"] == 0
    assert bid.leaves == leaves - 100 and not bid.modify_sent
    # (the engine then asks to restore its quote's size: a replace of it, now in flight; the
    # gateway's count of the confirmed size is checked end to end in test_adopt_modify)


def test_a_size_down_of_an_order_whose_replace_is_in_flight_is_not_adopted():
    """No Order Modified can answer an order pending a replace: the adoption leaves it as it was,
    and the venue's answer halts the engine (fail closed) rather than guess."""
    from mm_core.types import OrderKind, make_intent
    engine, venue, bid, _ = quoting()
    actions: list = []
    assert engine._submit(make_intent(OrderKind.REPLACE, engine.oms.new_token(), ACME, Side.BUY,
                                      bid.price - 100, bid.leaves, engine.ids, orig_token=bid.token), actions)
    assert bid.state is OrderState.PENDING_REPLACE
    apply(engine, AdoptModify(bid.token, ACME, "B", bid.price, bid.leaves, 100), NOW)
    assert bid.state is OrderState.PENDING_REPLACE and not bid.modify_sent
