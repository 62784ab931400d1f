"""`mmaudit journal ...`: inspect, follow, dump, verify and salvage write-ahead journals, and write a demo one.

Thin: parse arguments, call the journal library, print. Journal errors become ClickException
here. Must not know the on-disk format; payload decoding comes from journal.catalogue.
"""
from __future__ import annotations

import datetime
import json
import os
import random
import re
import shutil
import tempfile
import time

import click
import numpy as np

import journal
from cli.journal_follow import NotPrinted, drop_stdout, follow
from cli.params import SEQUENCE
from journal.catalogue import (EARLIER_SIZES, JSON_TYPES, PAYLOAD_DTYPES, ClockState, RecordType, Side,
                               TsSource, code_fingerprint, pack, pack_json, token_tag, unpack)

_CONTROL_TYPES = (RecordType.CHECKPOINT, RecordType.SEAL)


def _type_name(rtype: int) -> str:
    try:
        return RecordType(rtype).name
    except ValueError:
        return str(rtype)


def _enum_name(enum, value: int) -> str:
    try:
        return enum(value).name
    except ValueError:
        return str(value)


_PLAIN_TEXT = re.compile(rb"[\x20-\x5b\x5d-\x7e]*")       # printable ASCII but the backslash


def _text(raw: bytes) -> str:
    """A fixed text field (its NUL padding cut) as printable ASCII that loses no byte: a
    backslash is "\\\\" and any other byte outside printable ASCII "\\xNN" (a non-ASCII byte is
    evidence too; a control byte would break the one line per record)."""
    raw = raw.rstrip(b"\0")
    if _PLAIN_TEXT.fullmatch(raw):
        return raw.decode("ascii")
    return "".join(_ESCAPES[b] for b in raw)


_ESCAPES = [chr(b) if 0x20 <= b < 0x7F and b != 0x5C else "\\\\" if b == 0x5C else f"\\x{b:02x}"
            for b in range(256)]


def _field_value(record, name: str):
    value = record[name]
    if isinstance(value, bytes):
        return _text(value)
    if isinstance(value, np.ndarray):
        raw = value.tobytes()
        if name == "raw" and "raw_len" in record.dtype.names:
            raw = raw[: int(record["raw_len"])]
        return raw.hex()
    return value.item() if hasattr(value, "item") else value


def _unique_keys(pairs: list) -> dict:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise ValueError("a key is repeated")       # a dict would keep only its last value
    return document


def _json_document(payload: bytes) -> dict | None:
    """The payload's JSON object, or None when it is anything else: not strict UTF-8, not JSON, a
    list or a scalar, an object with a repeated key, or nested too deep to decode."""
    try:
        document = json.loads(payload.decode("utf-8"), object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError):     # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    return document if isinstance(document, dict) else None


def decode_payload(rtype: int, payload: bytes) -> dict:
    """A JSON-friendly view of a payload: fields of fixed types (texts escaped, byte arrays hex),
    a JSON type's object under "json" (never mixed with the view's own keys), else "hex"."""
    if rtype in _CONTROL_TYPES:
        return {"hash": payload[:32].hex(), "records_in_segment": int.from_bytes(payload[32:40], "little")}
    if rtype in PAYLOAD_DTYPES and (len(payload) == PAYLOAD_DTYPES[rtype].itemsize
                                    or len(payload) in EARLIER_SIZES.get(rtype, ())):
        record = unpack(rtype, payload)
        fields = {name: _field_value(record, name) for name in record.dtype.names}
        if rtype == RecordType.SESSION_START:
            fields["code_fingerprint"] = code_fingerprint(record) or "unknown"
        return fields
    if rtype in JSON_TYPES:
        document = _json_document(payload)
        if document is not None:
            return {"json": document}
    return {"hex": payload.hex()}


def record_dict(rec: journal.Record) -> dict:
    """A record for --json: the payload's view plus, always, its exact bytes as "hex" (no fixed
    layout has a field of that name)."""
    return {"seq": rec.seq, "type": _type_name(rec.rtype), "ts_ns": rec.ts_ns,
            "ts_source": _enum_name(TsSource, rec.ts_source), "clock_state": _enum_name(ClockState, rec.clock_state),
            "length": len(rec.payload), "payload": {**decode_payload(rec.rtype, rec.payload), "hex": rec.payload.hex()}}


_PHC_SOURCES = (TsSource.HW_PHC, TsSource.HW_PHC_BY)


def _timestamp_text(ts_ns: int, source: int) -> str:
    """UTC ("...Z") for system-clock stamps; a NIC's raw PHC time (TAI unless its PHC is set to
    UTC: the journal does not say) is shown as read, marked "PHC" instead of "Z"."""
    if source == TsSource.NONE:
        return "-"
    stamp = datetime.datetime.fromtimestamp(ts_ns // 1_000_000_000, tz=datetime.timezone.utc)
    zone = " PHC" if source in _PHC_SOURCES else "Z"
    return stamp.strftime("%Y-%m-%dT%H:%M:%S") + f".{ts_ns % 1_000_000_000:09d}{zone}"


def record_line(rec: journal.Record) -> str:
    """One human-readable line per record."""
    decoded = decode_payload(rec.rtype, rec.payload)
    if "hex" in decoded:
        fields = "hex=" + decoded["hex"][:64] + ("..." if len(decoded["hex"]) > 64 else "")
    elif "json" in decoded:
        fields = "json=" + json.dumps(decoded["json"], separators=(",", ":"))      # ASCII: \\u escapes
    else:
        fields = " ".join(f"{k}={v}" for k, v in decoded.items() if k != "raw")
    return (f"{rec.seq:>10} {_type_name(rec.rtype):<14} {_timestamp_text(rec.ts_ns, rec.ts_source)} "
            f"{_enum_name(TsSource, rec.ts_source)}/{_enum_name(ClockState, rec.clock_state)} "
            f"len={len(rec.payload)} {fields}").rstrip()


def _parse_types(names: tuple[str, ...]) -> list[int] | None:
    if not names:
        return None
    try:
        return [int(RecordType[n.upper().replace("-", "_")]) for n in names]
    except KeyError as exc:
        raise click.BadParameter(f"unknown record type {exc.args[0]}; one of "
                                 f"{', '.join(t.name for t in RecordType)}") from exc


@click.group(name="journal")
def command() -> None:
    """Inspect, follow, dump, verify and salvage write-ahead journals.

    Example: mmaudit journal verify ./journal-dir
    """


@command.command()
@click.argument("path", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
def info(path: str, as_json: bool) -> None:
    """Summarise a journal: id, segments, sequence range, writer lock and recovery state.

    Example: mmaudit journal info ./journal-dir
    """
    try:
        summary = journal.info(path)
    except journal.JournalError as exc:
        raise click.ClickException(str(exc)) from exc
    summary["running_code"] = _running_code()
    summary["sessions"] = _sessions(path)
    if as_json:
        click.echo(json.dumps(summary))
        return
    writer = (f"live (pid {summary['pid']})" if summary["writer_live"] else
              "closed cleanly" if summary["closed_cleanly"] else
              f"not running, did not close cleanly (pid {summary['pid']}): next writer will recover"
              if summary["pid"] else "none yet")
    click.echo(f"journal   {summary['path']}")
    click.echo(f"id        {summary['journal_id']}")
    click.echo(f"format    version {summary['format_version']}")
    click.echo(f"segments  {summary['segments']} ({summary['bytes']} bytes)")
    click.echo(f"records   {summary['records']} (seq {summary['first_seq']}..{summary['last_seq']})")
    click.echo(f"writer    {writer}")
    click.echo(f"reserve   {summary['reserve_bytes']} bytes" if summary["reserve_bytes"] else
               "reserve   none: the writer is short of disk space (only risk-reducing appends) or never opened")
    stopped = summary["stopped"]
    click.echo("readable  to the end" if stopped is None else
               f"readable  up to seq {stopped['seq'] - 1}: {stopped['reason']} at segment {stopped['segment']} "
               f"offset {stopped['offset']}")
    for line in _discarded_lines(summary["discarded"]):
        click.echo(f"discarded {line}")
    click.echo(f"code      this code's fingerprint is {summary['running_code']}")
    for line in _session_lines(summary["sessions"], summary["running_code"]):
        click.echo(f"session   {line}")


def _running_code() -> str:
    from mm_core import buildid      # only here: the rest of these commands need no engine code
    try:
        return buildid.fingerprint()
    except buildid.BuildIdError:
        return "unknown"


def _sessions(path: str) -> list[dict] | str:
    """Each SESSION_START's session, code version, code fingerprint ("unknown" for a record of
    layout 1) and order-token tag ("" before layout 3); the error's text when the journal cannot
    be read."""
    try:
        with journal.Reader(path) as reader:
            starts = reader.read_fixed(RecordType.SESSION_START)
    except journal.JournalError as exc:
        return f"unreadable: {exc}"
    return [{"seq": int(s["seq"]), "session_id": int(s["session_id"]),
             "code_version": _field_value(s, "code_version"),
             "code_fingerprint": code_fingerprint(s) or "unknown", "token_tag": token_tag(s)} for s in starts]


def _session_lines(sessions: list[dict] | str, running: str) -> list[str]:
    if isinstance(sessions, str):
        return [sessions]
    if not sessions:
        return ["none (no SESSION_START: the code that wrote it is unknown)"]
    return [f"{s['session_id']} at seq {s['seq']}: code {s['code_version'] or '?'} fingerprint "
            f"{s['code_fingerprint']} ({'this code' if s['code_fingerprint'] == running else 'other code'}), "
            f"token tag {s['token_tag'] or 'none'}" for s in sessions]


def _discarded_lines(runs) -> list[str]:
    return [f"{run['run']}: unreadable ({run['problem']})" if "problem" in run else
            f"{run['run']}: {len(run['files'])} files, {run['bytes']} bytes a recovery kept after "
            f"damage it found (no longer part of the journal)" for run in runs]


@command.command()
@click.argument("path", type=click.Path(file_okay=False))
@click.option("--from-seq", type=SEQUENCE, default=None, help="First sequence to print.")
@click.option("--count", type=click.IntRange(min=1), default=None, help="Stop after this many records.")
@click.option("--idle-timeout", type=click.FloatRange(min=0), default=None,
              help="Stop after this many seconds without a new record (default: follow forever).")
@click.option("--name", default=None, help="Named tailer: resume from and commit its saved position.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def tail(path: str, from_seq: int | None, count: int | None, idle_timeout: float | None, name: str | None,
         as_json: bool) -> None:
    """Follow a live journal and print one line per record as it arrives.

    A named tailer saves its position every second and when it stops (SIGTERM, Ctrl-C, --count,
    --idle-timeout), only past records it printed: one it could not print whole (stdout closed, or
    not read when SIGTERM came) is printed again by the next run.

    Example: mmaudit journal tail ./journal-dir --from-seq 1 --count 10
    """
    render = (lambda rec: json.dumps(record_dict(rec))) if as_json else record_line
    try:
        with journal.Tailer(path, name=name, from_seq=from_seq) as tailer:
            follow(tailer, render, count=count, idle_timeout=idle_timeout, named=name is not None)
    except journal.JournalError as exc:
        raise click.ClickException(str(exc)) from exc
    except NotPrinted as exc:
        drop_stdout()
        again = f": tailer {name}'s saved position is before it, its next run prints it" if name else ""
        raise click.ClickException(f"{exc}{again}") from None


@command.command()
@click.argument("path", type=click.Path(file_okay=False))
@click.option("--from-seq", type=SEQUENCE, default=None, help="First sequence to print.")
@click.option("--to-seq", type=SEQUENCE, default=None, help="Last sequence to print.")
@click.option("--type", "types", multiple=True, help="Only these record types (repeatable), e.g. ORDER_SENT.")
@click.option("--control", is_flag=True, help="Also print CHECKPOINT and SEAL records.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line: the payload decoded (a JSON "
              "type's document under \"json\"), and always its exact bytes as \"hex\".")
def dump(path: str, from_seq: int | None, to_seq: int | None, types: tuple[str, ...], control: bool,
         as_json: bool) -> None:
    """Print the records of a journal, decoding fixed payloads by their catalogue layout.

    Example: mmaudit journal dump ./journal-dir --type ORDER_SENT --json
    """
    wanted = _parse_types(types)
    if wanted is not None and control:
        wanted += [int(t) for t in _CONTROL_TYPES]
    try:
        # every segment checked at open (not trusted from its summary): records past damage in an
        # earlier segment are not part of the journal (the next writer moves them to discarded/),
        # so a dump must not print them as if they were
        with journal.Reader(path, full_scan=True) as reader:
            for rec in reader.records(first_seq=from_seq, last_seq=to_seq, rtypes=wanted, include_control=control):
                click.echo(json.dumps(record_dict(rec)) if as_json else record_line(rec))
            stopped = reader.stopped
    except journal.JournalError as exc:
        raise click.ClickException(str(exc)) from exc
    if stopped is not None:
        raise click.ClickException(
            f"the journal stops before seq {stopped['seq']}: {stopped['reason']} at segment {stopped['segment']} "
            f"offset {stopped['offset']}; what follows is not part of it (run `mmaudit journal verify {path}`)")


@command.command()
@click.argument("path", type=click.Path(file_okay=False))
def verify(path: str) -> None:
    """Check every record, checkpoint hash and segment seal; exit 1 naming the first bad record,
    or the discarded/ runs where an earlier recovery kept what damage cut off.

    Example: mmaudit journal verify ./journal-dir
    """
    try:
        report = journal.verify(path)
    except journal.JournalError as exc:
        raise click.ClickException(str(exc)) from exc
    summary = (f"{report.records} records in {report.segments} segments, {report.checkpoints} hash links, "
               f"last seq {report.last_seq}")
    if not report.ok:
        click.echo(f"CORRUPT: {_corrupt_text(report, summary)}", err=True)
        raise SystemExit(1)
    if report.discarded:
        click.echo(f"DAMAGED EARLIER: the journal verifies ({summary}), but records left it: "
                   + "; ".join(_discarded_lines(report.discarded))
                   + f". `mmaudit journal salvage {path}` reads them back", err=True)
        raise SystemExit(1)
    tail_state = "sealed" if report.last_sealed else (
        "open (live writer)" if report.writer_live else "unsealed: the next writer will recover it")
    click.echo(f"OK: {summary}; last segment {tail_state}; {report.unanchored} records after the last hash link")


def _corrupt_text(report: journal.VerifyReport, summary: str) -> str:
    """What failed and how far the journal is proven. A hash link that does not match proves
    none of the records it covers (the altered one is among them), so only those before it are
    verified; any other failure is at the record named, and what precedes it verified."""
    bad = report.first_bad
    if bad.chain_from_seq is None:
        return f"{bad} ({summary} verified before it)"
    verified = (f"records verified up to seq {bad.chain_from_seq - 1}" if bad.chain_from_seq > 1
                else "no record verified")
    unproven = (f"seq {bad.chain_from_seq}..{bad.seq - 1} not proven: one or more altered"
                if bad.seq > bad.chain_from_seq else "the hash link record itself altered")
    return (f"{bad}: {verified}; {unproven} ({report.records} records read in {report.segments} segments, "
            f"{report.checkpoints - 1} of {report.checkpoints} hash links matched)")


@command.command()
@click.argument("path", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON object: every run, file, record (payloads hex) "
              "and invalid range.")
def salvage(path: str, as_json: bool) -> None:
    """Read back what recoveries kept in discarded/: per run and file, the records that still
    validate, how many of them the journal no longer holds, and the byte ranges that do not.

    Exit 0 when every kept file was read (lost records are reported, not an error); 1 when a
    kept file or run could not be read (each is named with its error, the others still read).

    Example: mmaudit journal salvage ./journal-dir --json
    """
    try:
        runs = journal.salvage(path)
    except journal.JournalError as exc:
        raise click.ClickException(str(exc)) from exc
    unreadable = [bad for run in runs for bad in run.unreadable]
    if as_json:
        click.echo(json.dumps({"journal": path, "runs": [_run_dict(run) for run in runs]}))
    elif not runs:
        click.echo(f"{path}: no discarded/ runs (no recovery kept anything)")
    else:
        for run in runs:
            click.echo(f"r{run.run} {run.path}: {len(run.files)} segment file(s)")
            for kept in run.files:
                for line in _salvaged_lines(kept):
                    click.echo(f"  {line}")
            if run.other_files:
                click.echo(f"  not segment files, not read: {', '.join(run.other_files)}")
            for bad in run.unreadable:
                click.echo(f"  UNREADABLE {bad.path}: {type(bad.error).__name__}: {bad.error}")
        records = sum(len(f.data_records) for run in runs for f in run.files)
        lost = sum(f.lost for run in runs for f in run.files)
        click.echo(f"{records} data record(s) salvaged from {len(runs)} run(s), {lost} of them no longer in the "
                   f"journal" + (f"; {len(unreadable)} kept file(s) or run(s) UNREADABLE" if unreadable else ""))
    if unreadable:
        click.echo(f"{len(unreadable)} kept file(s) or run(s) could not be read: "
                   + ", ".join(bad.path for bad in unreadable), err=True)
        raise SystemExit(1)


def _salvaged_lines(kept: journal.SalvagedFile) -> list[str]:
    data = kept.data_records
    span = f"seq {kept.seq_range[0]}..{kept.seq_range[1]}" if kept.seq_range else "no data records"
    lines = [f"{kept.name}: {kept.file_size} of {kept.segment_size} bytes, segment {kept.index} (first seq "
             f"{kept.first_seq}): {len(data)} data records valid ({span}) and {len(kept.records) - len(data)} "
             f"control, {kept.lost} no longer in the journal"]
    if kept.header_problem:
        lines.append(f"  header: {kept.header_problem}")
    lines += [f"  invalid bytes {r.offset}..{r.offset + r.length - 1} ({r.length} bytes)" for r in kept.invalid]
    return lines


def _run_dict(run: journal.SalvagedRun) -> dict:
    return {"run": run.run, "path": run.path, "other_files": list(run.other_files),
            "unreadable": [{"name": bad.name, "path": bad.path, "error": type(bad.error).__name__,
                            "message": str(bad.error)} for bad in run.unreadable],
            "files": [{"name": f.name, "segment": f.index, "format_version": f.version, "first_seq": f.first_seq,
                       "segment_size": f.segment_size, "file_size": f.file_size, "header_problem": f.header_problem,
                       "lost": f.lost, "invalid": [{"offset": r.offset, "length": r.length} for r in f.invalid],
                       "records": [{"offset": r.offset, "seq": r.seq, "type": r.type_name, "control": r.is_control,
                                    "ts_ns": r.ts_ns, "ts_source": _enum_name(TsSource, r.ts_source),
                                    "clock_state": _enum_name(ClockState, r.clock_state), "length": len(r.payload),
                                    "payload": r.payload.hex(), "in_journal": r.in_journal,
                                    "identical": r.identical, "lost": r.lost} for r in f.records]}
                      for f in run.files]}


# The demo's orders: the bundled reference data's instruments (the embedded venue's listings) and
# the engine's default algo, desk, trader and client ids, so `mmaudit report all` on a demo journal
# has instruments and parties for every order.
_DEMO_STOCKS = {1: "ACME", 2: "BOLT", 3: "CHIP"}


def _demo_enter(token: bytes, side: str, symbol_id: int, price: int, qty: int) -> bytes:
    """The SoupBinTCP packet of an OUCH Enter Order, as the runner journals it in ORDER_SENT."""
    from mm_core.protocol import ouch, soupbintcp      # only here: the other commands need no codecs
    msg = ouch.EnterOrder(token=token.decode(), side=side, shares=qty, stock=_DEMO_STOCKS[symbol_id], price=price,
                          time_in_force=99999, firm="MMAU", display="Y", capacity="P", intermarket_sweep="N",
                          minimum_quantity=0, cross_type="N", customer_type="R")
    return soupbintcp.encode(soupbintcp.UnsequencedData(payload=ouch.encode(msg)))


def _demo_accepted(order: dict, now_ns: int, order_ref: int) -> bytes:
    """The venue's SoupBinTCP packet accepting `order`, as the runner journals it in VENUE_MSG."""
    from mm_core.protocol import ouch, soupbintcp
    from mm_core.venue import sessiontime
    msg = ouch.Accepted(timestamp=sessiontime.stamp(now_ns, sessiontime.eastern_date(now_ns)),
                        token=order["token"].decode(), side=order["side"], shares=order["qty"],
                        stock=_DEMO_STOCKS[order["symbol_id"]], price=order["price"], time_in_force=99999,
                        firm="MMAU", display="Y", order_ref=order_ref, capacity="P", intermarket_sweep="N",
                        minimum_quantity=0, cross_type="N", order_state="L", bbo_weight=" ")
    return soupbintcp.encode(soupbintcp.SequencedData(payload=ouch.encode(msg)))


def _demo_records(rng: random.Random, count: int, start_ns: int):
    """(rtype, payload, ts_ns, ts_source, clock_state) tuples in the shape a trading session writes:
    real OUCH bytes for the orders sent and the venue's acceptances of them (market data packets
    are random bytes after the session name)."""
    now = start_ns
    yield (RecordType.SESSION_START, pack(RecordType.SESSION_START, session_id=1, config_sha256=rng.randbytes(32),
                                          code_version=b"0.1.0", limits_version=b"demo-1",
                                          venue_session=b"DEMO000001", profile=b"eu-hft"),
           now, TsSource.USER, ClockState.LOCKED)
    yield (RecordType.LIMITS_LOADED, pack_json({"version": "demo-1", "max_order_qty": 1000}),
           now, TsSource.USER, ClockState.LOCKED)
    token, unanswered, soup_seq = 0, [], 0
    for i in range(max(0, count - 3)):
        now += rng.randrange(1_000, 200_000)
        kind = rng.random()
        if kind < 0.55:
            yield (RecordType.MD_PACKET, b"DEMO000001" + rng.randbytes(rng.randrange(30, 400)),
                   now, TsSource.HW_PHC, ClockState.LOCKED)
        elif kind < 0.70:
            token += 1
            order = {"token": b"T%013d" % token, "side": rng.choice("BS"), "symbol_id": rng.randrange(1, 4),
                     "price": 1_000_000 + rng.randrange(-500, 500) * 100, "qty": 100}
            unanswered.append(order)
            yield (RecordType.ORDER_SENT, pack(RecordType.ORDER_SENT, token=order["token"], msg_type=ord("O"),
                                               side=ord(order["side"]), symbol_id=order["symbol_id"],
                                               price=order["price"], qty=order["qty"], tif=99999, algo_id=1,
                                               desk_id=1, trader_id=1, client_id=1, risk_verdict=1,
                                               trading_state=1, limits_version=1, tskey=token,
                                               raw=_demo_enter(order["token"], order["side"], order["symbol_id"],
                                                               order["price"], order["qty"])),
                   now, TsSource.USER, ClockState.LOCKED)
        elif kind < 0.82:
            yield (RecordType.TX_TS, pack(RecordType.TX_TS, order_seq=max(1, i), tskey=token, status=0,
                                          source=TsSource.SW_KERNEL, tx_ts_ns=now + 900),
                   now + 900, TsSource.SW_KERNEL, ClockState.LOCKED)
        elif kind < 0.92 and unanswered:
            soup_seq += 1
            yield (RecordType.VENUE_MSG, pack(RecordType.VENUE_MSG, soup_seq=soup_seq, packet_type=ord("S"),
                                              msg_type=ord("A"),
                                              raw=_demo_accepted(unanswered.pop(0), now, 5000 + soup_seq)),
                   now, TsSource.SW_KERNEL, ClockState.LOCKED)
        elif kind < 0.96:
            yield (RecordType.CLOCK_SAMPLE, pack(RecordType.CLOCK_SAMPLE, offset_ns=rng.randrange(-300, 300),
                                                 path_delay_ns=500, error_bound_ns=1_200, last_sync_age_ns=50_000_000,
                                                 gm_identity=0x001122FFFE334455, state=ClockState.LOCKED, port_state=9,
                                                 gm_clock_class=6, utc_offset=37, utc_offset_valid=1,
                                                 compliant_mask=7),
                   now, TsSource.USER, ClockState.LOCKED)
        elif kind < 0.98:
            yield (RecordType.RISK_DECISION, pack(RecordType.RISK_DECISION, token=b"T%013d" % (token + 1),
                                                  symbol_id=1, side=Side.BUY, msg_type=ord("O"), allowed=0, check_id=3,
                                                  price=1_000_000, qty=5000, value=5000, limit=1000,
                                                  detail=b"max order qty"),
                   now, TsSource.USER, ClockState.LOCKED)
        else:
            yield (RecordType.TIMER, pack(RecordType.TIMER, timer_id=1, now_ns=now), now, TsSource.USER,
                   ClockState.LOCKED)
    yield (RecordType.SESSION_STOP, pack(RecordType.SESSION_STOP, session_id=1, events=count, orders=token,
                                         reason=b"demo complete"), now, TsSource.USER, ClockState.LOCKED)


@command.command()
@click.option("--dir", "directory", required=True, type=click.Path(file_okay=False),
              help="Directory for the new journal (created; must not hold a journal yet).")
@click.option("--records", type=click.IntRange(min=3, max=50_000_000), default=10_000, show_default=True,
              help="How many records to write.")
@click.option("--segment-size", type=click.IntRange(min=65536), default=4 << 20, show_default=True,
              help="Bytes per segment file.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the record generator.")
def demo(directory: str, records: int, segment_size: int, seed: int) -> None:
    """Write a journal with a realistic mix of record types, verify it and print a summary.

    Example: mmaudit journal demo --dir ./demo-journal --records 10000
    """
    if os.path.isdir(directory) and os.listdir(directory):
        # refused before a writer opens it: the open would recover a journal there (seal a crashed
        # segment, take over its lock), using up the evidence `mmaudit recover` reports
        raise click.ClickException(f"{directory} is not empty (a journal, or other files); pick an empty "
                                   f"or new directory")
    existed = os.path.isdir(directory)
    rng = random.Random(seed)
    counts: dict[str, int] = {}
    started = time.perf_counter()
    try:
        # a creation that fails (a full disk) removes what it made itself: the directory is as it was
        j = journal.Journal(directory, segment_size=segment_size, durability="group", group_records=4096,
                            group_us=20_000)
    except journal.JournalError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        with j:
            if not j.recovery.created:
                raise click.ClickException(f"{directory} already holds a journal; pick an empty directory")
            for rtype, payload, ts_ns, source, state in _demo_records(rng, records, 1_767_225_600_000_000_000):
                j.append(rtype, payload, ts_ns, source, state)
                counts[rtype.name] = counts.get(rtype.name, 0) + 1
            journal_id = j.journal_id
        elapsed = time.perf_counter() - started
        report = journal.verify(directory)
    except journal.JournalError as exc:
        raise click.ClickException(f"{exc}; {_remove_demo_journal(directory, existed)}") from exc
    click.echo(f"wrote {sum(counts.values())} records to {directory} (journal {journal_id}) in {elapsed:.2f} s")
    for name, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        click.echo(f"  {name:<14} {n}")
    if not report.ok:
        raise click.ClickException(f"verify failed: {report.first_bad}")
    click.echo(f"verify: OK ({report.records} records, {report.segments} segments, "
               f"{report.checkpoints} hash links)")


@command.command()
@click.option("--kills", type=click.IntRange(min=0), default=200, show_default=True,
              help="Writer processes SIGKILLed at random points, then recovered and read back.")
@click.option("--power-cuts", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Simulated power losses: every unsynced 512-byte sector kept, dropped or torn.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of both campaigns.")
@click.option("--workdir", type=click.Path(file_okay=False), default=None,
              help="Scratch directory (default: a temporary one, tmpfs when available).")
def stress(kills: int, power_cuts: int, seed: int, workdir: str | None) -> None:
    """Crash and power-loss campaigns against the journal; exit 1 on the first lost or corrupt record.

    Example: mmaudit journal stress --kills 5000 --power-cuts 20000 --seed 7
    """
    from journal import stress as campaigns
    from journal.scratch import scratch_dir

    def kill_line(r) -> str:
        return (f"SIGKILL: {r.runs} runs ({r.killed} killed, {r.killed_in_open} during recovery), {r.acked} "
                f"acknowledged records, {r.verified} read back intact")

    def power_line(r) -> str:
        return (f"power loss: {r.cases} cuts (sectors kept {r.sectors_kept}, dropped {r.sectors_dropped}, torn "
                f"{r.sectors_torn}; {r.files_lost} files lost), {r.durable} durable records")

    failed = False
    try:
        if workdir is not None:
            os.makedirs(workdir, exist_ok=True)
        # lock-owned: a stress run killed from outside leaves its scratch for the next run to sweep
        scratch_cm = scratch_dir("mmaudit-stress-", workdir)
    except OSError as exc:
        raise click.ClickException(f"cannot make a scratch directory in {workdir or tempfile.gettempdir()}: "
                                   f"{exc.strerror or exc}") from None
    with scratch_cm as scratch:
        for count, campaign, describe in ((kills, campaigns.kill_runs, kill_line),
                                          (power_cuts, campaigns.powerloss_runs, power_line)):
            if not count:
                continue
            try:
                report = campaign(count, seed, scratch)
            except (campaigns.StressError, journal.JournalError) as exc:
                raise click.ClickException(str(exc)) from exc
            click.echo(f"{describe(report)}, {report.failures} failures in {report.seconds:.1f} s")
            if report.first_failure:
                click.echo(f"  first failure: {report.first_failure}")
            failed |= not report.ok
    if failed:
        raise SystemExit(1)


def _remove_demo_journal(directory: str, existed: bool) -> str:
    """After a demo that failed once its journal was created (a full disk at a segment roll, an I/O
    error): the generated journal holds nothing worth keeping, and its files would make the next
    demo refuse the directory. The directory was new or empty (checked first), so everything in it
    is this run's. (A failed creation leaves nothing: the journal's writer removes what it made.)"""
    try:
        if existed:
            for name in os.listdir(directory):
                os.unlink(os.path.join(directory, name))
        else:
            shutil.rmtree(directory)
    except OSError as exc:
        return f"the partial demo journal in {directory} could not be removed ({exc.strerror or exc}): remove it"
    return f"the partial demo journal was removed from {directory}"
