"""The mmaudit command has Arrow allocate with the C library (whose freed memory a report run
keeps, reports.allocator), unless the user chose Arrow's pool; set before pyarrow first loads."""
from __future__ import annotations

import os
import subprocess
import sys

CODE = "import cli.main\nimport pyarrow\nprint(pyarrow.default_memory_pool().backend_name)\n"


def _backend(env: dict) -> str:
    done = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True, env=env)
    return done.stdout.strip()


def test_the_command_gives_arrow_the_system_allocator():
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    assert _backend(env) == "system"


def test_a_pool_the_user_chose_is_kept():
    env = dict(os.environ, ARROW_DEFAULT_MEMORY_POOL="mimalloc")
    assert _backend(env) == "mimalloc"
