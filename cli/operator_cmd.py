"""`mmaudit operator`: send kill, enable, safe mode or reconcile to a running `mmaudit run`
through its control socket (mm_core.control), and print what the session did.

Exit status: 0 carried out; 1 refused by the session (a fault still active, an invalid
transition, a reconciliation that is not clean, the session ended first), failed on the
session's side (e.g. a kill whose cancels could not be sent) or not yet carried out; 2 bad arguments; a
missing session is one ClickException line (exit 1).
"""
from __future__ import annotations

import json
import pathlib
import re
import sys

import click

from mm_core.control import COMMANDS, SCOPED, SCOPES, TEXT_BYTES, ControlError, send

CONTROL_NAME = "control.sock"       # `mmaudit run` serves it in its journal directory


def control_path(journal_dir: str | None, control: str | None) -> str:
    if bool(journal_dir) == bool(control):
        raise click.UsageError("give --journal DIR (the running session's) or --control PATH, one of them")
    return control or str(pathlib.Path(journal_dir) / CONTROL_NAME)


@click.command("operator")
@click.argument("command_name", metavar="COMMAND", type=click.Choice(COMMANDS))
@click.option("--journal", "journal_dir", type=click.Path(file_okay=False), default=None,
              help="The running session's journal directory (its control socket is there).")
@click.option("--control", default=None, help="The control socket path, when `mmaudit run --control` moved it.")
@click.option("--actor", required=True, help=f"Who asks (journaled with the command and your uid/pid; "
              f"at most {TEXT_BYTES['actor']} bytes in UTF-8).")
@click.option("--reason", required=True, help=f"Why (journaled; at most {TEXT_BYTES['reason']} bytes in UTF-8).")
@click.option("--scope", type=click.Choice(SCOPES), default="all", show_default=True,
              help="What a kill cancels and blocks: everything, or one symbol, algo, desk or client "
                   "(an enable with a scope lifts that scope's kill only).")
@click.option("--id", "scope_id", default=None,
              help="The scope's id: a symbol name (or id) for --scope symbol, a number otherwise (the "
                   "session refuses a symbol it does not trade, or an algo, desk or client id its orders "
                   "do not carry).")
@click.option("--timeout", type=click.FloatRange(1, 600), default=60.0, show_default=True,
              help="Seconds to wait for the session's answer.")
@click.option("--json", "as_json", is_flag=True, help="Print the session's answer as JSON.")
def command(command_name, journal_dir, control, actor, reason, scope, scope_id, timeout, as_json) -> None:
    """Send an operator command to a running session and show the outcome.

    kill cancels every resting order in its scope: --scope all halts trading (latched); a scoped
    kill blocks new orders in that scope only while the rest trades on. enable re-enables a halted
    session (refused while a fault is active); enable --scope X --id Y lifts that scoped kill only.
    safe-mode-on/off (only the operator lifts safe mode; a reconcile keeps it); reconcile compares
    the engine's orders and positions with the venue's and resolves differences, as recovery does.
    Every command is journaled (OPERATOR_CMD, or RECON for reconcile) before it acts.

    Example: mmaudit operator kill --journal ./journal --actor alice --reason "runaway quotes"
    """
    path = control_path(journal_dir, control)
    if scope_id is not None and scope == "all":
        raise click.UsageError("--id needs --scope symbol, algo, desk or client")
    if scope != "all" and scope_id is None:
        raise click.UsageError(f"--scope {scope} needs --id")
    if scope != "all" and command_name not in SCOPED:
        raise click.UsageError("--scope applies to kill and enable only")
    ident: int | str = 0
    if scope_id is not None:
        # ASCII digits only: str.isdigit() is true of '¹²', which int() refuses
        ident = int(scope_id) if re.fullmatch(r"[0-9]+", scope_id) else scope_id
        if isinstance(ident, str) and scope != "symbol":
            raise click.BadParameter(f"{scope} ids are numbers, not {scope_id!r}", param_hint="--id")
    try:
        answer = send(path, {"command": command_name, "actor": actor, "reason": reason,
                             "scope": scope, "scope_id": ident, "wait_s": max(0.5, timeout - 1)}, timeout)
    except ControlError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(answer, indent=2, sort_keys=True))
    else:
        click.echo(_describe(command_name, answer))
    sys.exit(0 if answer.get("ok") else 1)


def _describe(command_name: str, answer: dict) -> str:
    if answer.get("error"):
        return f"{command_name}: {answer['error']}"
    if answer.get("journaled") is False:
        return f"{command_name}: NOT carried out: the journal refused its record (write-ahead)"
    if answer.get("failed"):
        head = f"{command_name}: FAILED: {answer['failed']}"
    elif answer.get("refused"):
        head = f"{command_name}: refused: {answer['refused']}"
    else:
        head = f"{command_name}: done"
        if answer.get("orders_cancelled") is not None:
            head += f", {answer['orders_cancelled']} orders cancelled"
    faults = answer.get("faults") or []
    lines = [head, f"  trading state {answer.get('trading_state')}"
                   + (f" (faults: {', '.join(faults)})" if faults else "")
                   + (f"; scoped kills in force: {answer['kills_in_force']}" if answer.get("kills_in_force") else ""),
             f"  journaled as {answer.get('origin')}, actor {answer.get('actor')}"]
    recon = answer.get("reconciliation")
    if recon:
        lines.append(f"  reconciliation {'clean' if recon.get('reconciled') else 'NOT clean'}: "
                     f"{recon.get('resolutions', 0)} resolutions, {recon.get('delivered', 0)} venue messages "
                     f"the journal lacked" + (f"; {'; '.join(recon.get('reasons') or [])}" if recon.get("reasons") else ""))
    return "\n".join(lines)
