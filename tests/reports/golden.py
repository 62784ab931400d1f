"""A golden engine journal for the report tests: one short real session (embedded venue, engine,
runner, PTP lab clock — mm_core.session) journaled once per test session, plus an independent
oracle of what it holds, decoded record by record with mm_core's own OUCH codec.

Also reference data for the embedded venue: the bundled refdata describes AAPL/MSFT/SPY under
symbol ids 1-3 and has no client 1, while the venue lists ACME/BOLT/CHIP under those ids and the
engine journals client_id 1 (the gateway refuses client 0). `venue_refdata` writes the bundled
files with the venue's fictitious instruments (ISINs with valid check digits, prefix XX) and
client 1 as the firm's own account, so report rows from a real engine can be reconciled.
"""
from __future__ import annotations

import pathlib
import shutil
from dataclasses import dataclass, field

import pytest

from journal import Reader
from journal.catalogue import RecordType, raw_bytes, unpack
from mm_core.protocol import ouch, soupbintcp
from mm_core.session import ClockSpec, ClockUnavailable, Session, SessionSettings, lab_available, load_inputs
from reports.identifiers import isin_check_digit
from reports.refdata import DEFAULT_DIR

GOLDEN_SECONDS = 5.0
GOLDEN_SEED = 11


@dataclass
class JournalOracle:
    """What the journal says, one record at a time (the slow, obvious way)."""

    order_sent: list[int] = field(default_factory=list)        # seqs
    order_sent_by_type: dict[str, int] = field(default_factory=dict)
    venue_events: list[int] = field(default_factory=list)      # seqs of sequenced OUCH non-system msgs
    executions: list[tuple[int, str, int, int]] = field(default_factory=list)   # (seq, token, shares, price)
    clock_samples: int = 0
    session_starts: int = 0


def read_oracle(path: str) -> JournalOracle:
    oracle = JournalOracle()
    with Reader(path) as reader:
        for rec in reader.records():
            if rec.rtype == RecordType.ORDER_SENT:
                sent = unpack(RecordType.ORDER_SENT, rec.payload)
                kind = chr(int(sent["msg_type"]))
                oracle.order_sent.append(rec.seq)
                oracle.order_sent_by_type[kind] = oracle.order_sent_by_type.get(kind, 0) + 1
            elif rec.rtype == RecordType.VENUE_MSG:
                frame = raw_bytes(unpack(RecordType.VENUE_MSG, rec.payload))
                packet = soupbintcp.decode(frame, soupbintcp.Direction.FROM_SERVER)
                if not isinstance(packet, soupbintcp.SequencedData):
                    continue
                msg = ouch.decode_outbound(packet.payload)
                if isinstance(msg, ouch.SystemEvent):
                    continue
                oracle.venue_events.append(rec.seq)
                if isinstance(msg, ouch.Executed):
                    oracle.executions.append((rec.seq, msg.token, msg.executed_shares, msg.execution_price))
            elif rec.rtype == RecordType.CLOCK_SAMPLE:
                oracle.clock_samples += 1
            elif rec.rtype == RecordType.SESSION_START:
                oracle.session_starts += 1
    return oracle


def venue_refdata(directory: pathlib.Path, client_id: int) -> pathlib.Path:
    """The bundled refdata with the embedded venue's stocks and `client_id` as own account."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("firm.toml", "mics.toml", "parties.toml"):
        shutil.copy(DEFAULT_DIR / name, directory / name)
    with open(directory / "parties.toml", "a") as fh:
        fh.write(f'\n[[client]]\nid = {client_id}\nkind = "OWN"\n')
    bundled = (DEFAULT_DIR / "instruments.toml").read_text()
    lines = [bundled[:bundled.index("[[instrument]]")]]      # keep the tick tables
    for s in load_inputs().venue_config.symbols:
        base = f"XX{s.name:0<9}"[:11]
        lines.append(
            f'[[instrument]]\nsymbol_id = {s.id}\nsymbol = "{s.name}"\n'
            f'isin = "{base}{isin_check_digit(base)}"\ncfi = "ESVUFR"\nmic = "XNAS"\ncurrency = "USD"\n'
            f'full_name = "{s.name} (embedded venue, fictitious)"\n'
            f'tick_table = "{"us_half_penny" if s.half_penny else "us_penny"}"\n'
            f'price_multiplier = 1\nin_firds = false\n\n')
    (directory / "instruments.toml").write_text("".join(lines))
    return directory


@dataclass(frozen=True)
class Golden:
    journal: str
    summary: object
    refdata: pathlib.Path
    oracle: JournalOracle


@pytest.fixture(scope="session")
def golden(tmp_path_factory) -> Golden:
    """One real trading session on the embedded venue with the PTP lab clock (needs root and
    network namespaces: without a compliant clock the engine rightly sends no order)."""
    why = lab_available()
    if why:
        pytest.skip(f"the golden journal needs the PTP lab clock: {why}")
    root = tmp_path_factory.mktemp("golden")
    settings = SessionSettings(str(root / "journal"), GOLDEN_SECONDS, clock=ClockSpec("lab"), seed=GOLDEN_SEED)
    inputs = load_inputs()
    try:
        summary = Session(settings, inputs).run()
    except ClockUnavailable as exc:
        pytest.skip(f"the golden journal needs the PTP lab clock: {exc}")
    assert summary.runner.orders_sent > 0, summary.not_trading_reason
    refdata = venue_refdata(root / "refdata", inputs.engine_config.client_id)
    return Golden(settings.journal_dir, summary, refdata, read_oracle(settings.journal_dir))
