"""`--phc` must name a PTP hardware clock, not merely a path that exists: `mmaudit run` and the
`clock` commands refuse a regular file, a directory or another device (/dev/null) with a one-line
usage error naming it, before a session starts or a journal is made. No PTP hardware needed."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli.main import cli

REFUSED = [("file", "is a regular file, not a PTP hardware clock"),
           ("/dev/null", "is character device 1:3 of the mem class, not a PTP hardware clock"),
           ("dir", "is a directory")]


def target(tmp_path, name: str) -> str:
    if name == "file":
        (tmp_path / "ptp0").write_text("")
        return str(tmp_path / "ptp0")
    return str(tmp_path) if name == "dir" else name


@pytest.mark.parametrize("name, said", REFUSED)
def test_run_refuses_a_phc_that_is_not_one(tmp_path, name, said):
    journal = tmp_path / "j"
    result = CliRunner().invoke(cli, ["run", "--ptp-uds", str(tmp_path / "uds"), "--phc", target(tmp_path, name),
                                      "--duration", "1s", "--journal", str(journal)])
    assert result.exit_code == 2 and said in result.output and "--phc" in result.output, result.output
    assert not journal.exists()


@pytest.mark.parametrize("name, said", REFUSED)
def test_the_clock_commands_refuse_a_phc_that_is_not_one(tmp_path, name, said):
    result = CliRunner().invoke(cli, ["clock", "check", "--uds", str(tmp_path / "uds"),
                                      "--phc", target(tmp_path, name)])
    assert result.exit_code == 2 and said in result.output, result.output
