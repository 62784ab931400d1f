"""The report registry: each kind's module is imported only when a run asks for that kind."""
from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from reports import run as run_module


def test_every_kind_names_the_module_whose_kind_it_is():
    for kind, module in run_module.MODULES.items():
        built = importlib.import_module(f"reports.{module}")
        assert built.KIND == kind
        assert run_module.BUILDERS[kind] is built.build
    for kind in run_module.STREAMED:
        built = importlib.import_module(f"reports.{run_module.MODULES[kind]}")
        assert run_module.STREAMERS[kind] is built.stream
        assert run_module.SCHEMA_VERSIONS[kind] == built.SCHEMA_VERSION
    assert "controls" not in run_module.STREAMERS and "nonsense" not in run_module.BUILDERS
    with pytest.raises(KeyError):
        run_module.STREAMERS["controls"]


def test_the_report_command_imports_no_builder_until_a_kind_is_run():
    probe = ("import sys, cli.report_cmd; "
             "print(sorted(m for m in sys.modules if m in ('reports.' + k for k in "
             "('orders', 'rts22', 'clock', 'controls', 'cat', 'execution'))))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
