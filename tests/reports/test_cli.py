import json

import click
from click.testing import CliRunner

from cli.report_cmd import EXIT_REJECTED, command
from reports.run import KINDS
from tests.reports.journal_builder import FIXTURE_REFDATA, DayBuilder


def test_every_command_has_help_with_an_example():
    runner = CliRunner()
    names = sorted(command.commands)
    assert names == sorted(list(KINDS) + ["all"])
    for name in names:
        result = runner.invoke(command, [name, "--help"])
        assert result.exit_code == 0 and "Example: mmaudit report" in result.output, name
    assert isinstance(command, click.Group) and command.name == "report"


def test_writes_reports_and_refuses_to_overwrite_without_force(day, day_journal, tmp_path):
    events = sum(n for name, n in day.ledger.counts.items() if name != "RISK_DENIED")
    runner = CliRunner()
    args = ["orders", "--journal", str(day_journal), "--out", str(tmp_path), "--refdata", str(FIXTURE_REFDATA)]
    first = runner.invoke(command, args)
    assert first.exit_code == 0, first.output
    assert "wrote" in first.output and f"order_events={events}" in first.output and "rejected=0" in first.output
    again = runner.invoke(command, args)
    assert again.exit_code == 1 and "--force" in again.output
    forced = runner.invoke(command, args + ["--force"])
    assert forced.exit_code == 0
    manifest = json.loads((tmp_path / "orders" / "_manifest.json").read_text())
    assert manifest["tables"]["order_events"] == events


def test_all_with_date_and_progress(day_journal, tmp_path):
    result = CliRunner().invoke(command, ["all", "--journal", str(day_journal), "--out", str(tmp_path),
                                          "--date", "2026-03-02", "--refdata", str(FIXTURE_REFDATA)])
    assert result.exit_code == 0, result.output
    for kind in KINDS:
        assert (tmp_path / kind / "_manifest.json").exists()
    assert "building and writing rts22" in result.output          # progress lines (stderr is mixed in by CliRunner)


def test_rejected_rows_give_a_non_zero_exit(tmp_path):
    b = DayBuilder()
    b.clock_sample()
    b.enter("U1", 9, "B", 1_500_000, 100)               # unknown symbol
    journal = b.write(tmp_path / "j")
    result = CliRunner().invoke(command, ["orders", "--journal", str(journal), "--out", str(tmp_path / "o"),
                                          "--refdata", str(FIXTURE_REFDATA)])
    assert result.exit_code == EXIT_REJECTED
    assert "rejected=1" in result.output and "rejects" in result.output


def test_bad_inputs_are_one_clear_line(tmp_path):
    runner = CliRunner()
    missing = runner.invoke(command, ["orders", "--journal", str(tmp_path / "nope"), "--out", str(tmp_path)])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    (tmp_path / "notajournal").mkdir()
    bad = runner.invoke(command, ["orders", "--journal", str(tmp_path / "notajournal"), "--out", str(tmp_path / "o")])
    assert bad.exit_code == 1 and "Error:" in bad.output and "Traceback" not in bad.output
    (tmp_path / "ref").mkdir()
    b = DayBuilder()
    b.clock_sample()
    journal = b.write(tmp_path / "j")
    bad_ref = runner.invoke(command, ["orders", "--journal", str(journal), "--out", str(tmp_path / "o2"),
                                      "--refdata", str(tmp_path / "ref")])
    assert bad_ref.exit_code == 1 and "reference-data file missing" in bad_ref.output


def test_no_text_writes_the_same_parquet_without_the_text_exports(day_journal, tmp_path):
    """--no-text: rts22 and cat write their Parquet tables byte for byte as a full run does, but no
    auth.016 XML / CAT JSON, and the manifest says the text exports were omitted."""
    runner = CliRunner()
    assert "--no-text" in runner.invoke(command, ["rts22", "--help"]).output
    for kind, suffix in (("rts22", ".xml"), ("cat", ".json")):
        outs = {}
        for label, extra in (("full", []), ("parquet", ["--no-text"])):
            out = tmp_path / label
            result = runner.invoke(command, [kind, "--journal", str(day_journal), "--out", str(out),
                                             "--refdata", str(FIXTURE_REFDATA)] + extra)
            assert result.exit_code == 0, result.output
            outs[label] = out / kind
        texts = {label: [p for p in root.rglob(f"*{suffix}") if p.name != "_manifest.json"]
                 for label, root in outs.items()}
        assert texts["full"] and not texts["parquet"], kind
        parquet = {label: {p.relative_to(root): p.read_bytes() for p in root.rglob("*.parquet")}
                   for label, root in outs.items()}
        assert parquet["full"] and parquet["full"] == parquet["parquet"], kind
        manifests = {label: json.loads((root / "_manifest.json").read_text()) for label, root in outs.items()}
        assert manifests["parquet"]["text_exports"] == "omitted on request"
        assert "text_exports" not in manifests["full"]
        assert manifests["full"]["tables"] == manifests["parquet"]["tables"]


def test_no_text_is_accepted_and_changes_nothing_for_kinds_without_text(day_journal, tmp_path):
    runner = CliRunner()
    result = runner.invoke(command, ["clock", "--no-text", "--journal", str(day_journal), "--out", str(tmp_path),
                                     "--refdata", str(FIXTURE_REFDATA)])
    assert result.exit_code == 0, result.output
    assert "text_exports" not in json.loads((tmp_path / "clock" / "_manifest.json").read_text())
