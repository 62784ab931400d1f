"""Reference-data files that are not UTF-8, cannot be read, or hold tables of the wrong shape give
a RefDataError naming the file, never a UnicodeDecodeError or TypeError from deep inside."""
import shutil

import pytest

from reports import refdata
from reports.errors import RefDataError
from tests.reports.journal_builder import FIXTURE_REFDATA


@pytest.fixture
def refdir(tmp_path):
    target = tmp_path / "ref"
    shutil.copytree(FIXTURE_REFDATA, target)
    return target


@pytest.mark.parametrize("name", refdata.FILES)
def test_a_file_that_is_not_utf8_is_named(refdir, name):
    (refdir / name).write_bytes(b"\xff\xfe[firm]\n")
    with pytest.raises(RefDataError, match=rf"{name}: not UTF-8 text"):
        refdata.load(refdir)


def test_a_file_that_cannot_be_read_is_named(refdir):
    (refdir / "parties.toml").unlink()
    (refdir / "parties.toml").mkdir()
    with pytest.raises(RefDataError, match=r"parties.toml: cannot read"):
        refdata.load(refdir)


@pytest.mark.parametrize("name, text, message", [
    ("mics.toml", "mic = 5\n", r"mics.toml: 'mic' must be an array of tables"),
    ("mics.toml", "mic = [1, 2]\n", r"mics.toml: 'mic' must be an array of tables"),
    ("instruments.toml", '[instrument]\nsymbol = "A"\n', r"instruments.toml: 'instrument' must be an array"),
    ("instruments.toml", "tick_tables = 3\n", r"instruments.toml: 'tick_tables' must be a table"),
    ("instruments.toml", "[tick_tables.x]\nbands = [1, 2]\n", r"tick_tables.x: needs a non-empty `bands` list"),
    ("parties.toml", "algo = 7\n", r"parties.toml: 'algo' must be an array of tables"),
    ("parties.toml", 'client = ["OWN"]\n', r"parties.toml: 'client' must be an array of tables"),
])
def test_tables_of_the_wrong_shape_are_named(refdir, name, text, message):
    (refdir / name).write_text(text)
    with pytest.raises(RefDataError, match=message):
        refdata.load(refdir)
