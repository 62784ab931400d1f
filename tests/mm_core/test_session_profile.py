"""--profile rewrites the limits document's top-level clock_profile wherever its line is indented
(the schema puts the key at the top level, TOML allows the indent); tomllib then checks that the
document's top-level value is the override, and anything else (the key only in a table, quoted,
inside a multi-line string) is a typed SessionConfigError naming the file, not a duplicate-key
error or a profile silently left as it was."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli.run_cmd import command as run
from mm_core.risk import EXAMPLE_TOML
from mm_core.sessionconfig import SessionConfigError, load_inputs, with_clock_profile

TOP = 'clock_profile = "eu-hft"\n'
assert TOP in EXAMPLE_TOML


def _limits(tmp_path, text: str) -> str:
    path = tmp_path / "limits.toml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("line", ['  clock_profile = "eu-hft"\n', '\tclock_profile="eu-hft"   # the default\n',
                                  'clock_profile= "eu-hft"\n'], ids=["spaces", "tab-comment", "unspaced"])
def test_an_indented_or_unspaced_top_level_clock_profile_is_overridden(tmp_path, line):
    text = EXAMPLE_TOML.replace(TOP, "\n" + line)
    inputs = load_inputs(limits_path=_limits(tmp_path, text), profile="eu-algo")
    assert inputs.limits.clock_profile == "eu-algo"
    assert inputs.limits_text.count("clock_profile") == 1
    assert '\n\nclock_profile = "eu-algo"\n' in inputs.limits_text       # the blank line before it kept
    assert load_inputs(limits_path=_limits(tmp_path, text)).limits.clock_profile == "eu-hft"


@pytest.mark.parametrize("text", [
    EXAMPLE_TOML.replace(TOP, "").replace("[staleness]\n", '[staleness]\n  clock_profile = "eu-hft"\n'),
    EXAMPLE_TOML.replace(TOP, '"clock_profile" = "eu-hft"\n'),
    EXAMPLE_TOML.replace(TOP, 'note = """\nclock_profile = "eu-hft"\n"""\n' + TOP),
], ids=["only-in-a-table", "quoted-key", "first-in-a-multiline-string"])
def test_a_clock_profile_the_override_cannot_set_is_a_typed_error(tmp_path, text):
    path = _limits(tmp_path, text)
    with pytest.raises(SessionConfigError, match=rf"limits {path}: cannot set clock_profile to 'eu-algo'"):
        load_inputs(limits_path=path, profile="eu-algo")
    with pytest.raises(SessionConfigError, match="cannot set clock_profile"):
        with_clock_profile(text, "eu-algo")


def test_a_document_that_is_not_toml_is_reported_as_such_with_or_without_the_override(tmp_path):
    path = _limits(tmp_path, "[staleness\n" + EXAMPLE_TOML)
    for profile in (None, "eu-algo"):
        with pytest.raises(SessionConfigError, match=r"not valid TOML: .*\(at line 1, column 11\)"):
            load_inputs(limits_path=path, profile=profile)


def test_run_says_so_in_one_line_before_anything_is_made(tmp_path):
    path = _limits(tmp_path, EXAMPLE_TOML.replace(TOP, '"clock_profile" = "eu-hft"\n'))
    result = CliRunner().invoke(run, ["--limits", path, "--profile", "us-cat", "--journal", str(tmp_path / "j")])
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"Error: limits {path}: cannot set clock_profile to 'us-cat'")
    assert not (tmp_path / "j").exists()
