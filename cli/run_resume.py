"""`mmaudit run --resume`: trade on in a journal whose session crashed, once recovery says so.

Owns the step between the two: recovery.recover with the run's own inputs and its venue (the
journal replayed, the venue's view reconciled, every difference resolved or trading left HALTED),
and what the session is handed to go on with (mm_core.session.Resumed). A recovery that does not
reconcile stops the run before it trades (its RECON records say why); one that reconciles with a
latch the operator must lift (a kill, a throttle) goes on HALTED until `mmaudit operator enable`.
Must not trade or journal itself: recovery and the session do.
"""
from __future__ import annotations

from typing import Callable

from journal import JournalError, Reader, RecordType
from mm_core.session import Resumed
from mm_core.sessionconfig import SessionConfigError, SessionInputs, VenueSpec
from recovery.errors import RecoveryError
from recovery.recover import RecoverySettings, recover

__all__ = ["resumer"]


def resumer(journal: str, venue: VenueSpec, say: Callable[[str], None]) -> Callable[[SessionInputs], Resumed]:
    """What Session(resume=...) calls: the recovery of the journal's crashed session on `venue`
    (its SoupBinTCP address), with progress lines through `say`."""
    def resume(inputs: SessionInputs) -> Resumed:
        session_id, start_seq = _last_session(journal)
        # fresh_session left at its default: every run journals whether it started fresh (its
        # "run-start" input), which replay reads; the setting only serves journals from before that
        settings = RecoverySettings(
            journal=journal, config=inputs.engine_config, symbols=inputs.symbols,
            limits_text=inputs.limits_text, venue=(venue.host, venue.ouch_port))
        try:
            result = recover(settings, progress=lambda stage, text: say(f"[recover {stage}] {text}"))
        except RecoveryError as exc:
            raise SessionConfigError(f"recovery of {journal} failed: {exc}") from None
        if not result.reconciled:
            raise SessionConfigError(f"recovery of {journal} did not reconcile with the venue: "
                                     f"{'; '.join(result.reasons) or 'no reason given'}; trading stays "
                                     f"{result.trading_state} and nothing is traded "
                                     "(mmaudit recover shows the details)")
        state = result.trading_state
        latch = "; ".join(f"{label}: {why}" if why else label
                          for label, why in result.engine.risk.latch_details.items())
        held = "" if state != "HALTED" else (
            f" until an operator enables it (mmaudit operator enable): latched by {latch or 'the restart'}")
        say(f"recovered: {result.replay.events} events replayed, reconciled with the venue; the session "
            f"goes on, trading {state}{held}")
        return Resumed(result.engine, session_id, result.utc_offset_s, result.utc_leap, start_seq)
    return resume


def _last_session(journal: str) -> tuple[int, int]:
    """The session id and sequence of the journal's last SESSION_START; SessionConfigError
    without one."""
    try:
        with Reader(journal) as reader:
            starts = reader.read_fixed(RecordType.SESSION_START)
    except JournalError as exc:
        raise SessionConfigError(f"cannot read the journal {journal}: {exc}") from None
    if not len(starts):
        raise SessionConfigError(f"{journal} holds no SESSION_START: no session to resume")
    return int(starts["session_id"][-1]), int(starts["seq"][-1])
