"""Sessions on one host and token prefix that start in the same 2 ms tick get different tags (so
disjoint tokens), whichever process claims them; tags only move forward; another prefix or day is
not held back; a torn claims file or one that cannot be opened falls back to the start's tick."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from mm_core.sessiontag import TAG_TICK_NS, session_tag, session_tick, tag_of
from mm_core.tagclaim import claim_tag

NOON = 1_795_000_000_000_000_000        # 2026-11-18, a trading day
DAY = 86_400 * 10**9
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_CLAIMER = """
import sys
from mm_core.tagclaim import claim_tag
print(" ".join(claim_tag("MM", int(sys.argv[2]), sys.argv[1]) for _ in range(50)))
"""


def test_same_tick_claims_from_four_processes_are_all_different(tmp_path):
    path = str(tmp_path / "claims.json")
    procs = [subprocess.Popen([sys.executable, "-c", _CLAIMER, path, str(NOON)], stdout=subprocess.PIPE,
                              text=True, cwd=ROOT) for _ in range(4)]
    tags = [tag for p in procs for tag in p.communicate(timeout=60)[0].split()]
    assert all(p.returncode == 0 for p in procs)
    first = session_tick(NOON)
    assert sorted(tags) == [tag_of(first + i) for i in range(200)]      # the start's tick, then on


def test_a_later_start_takes_its_own_tick_and_prefixes_and_days_are_apart(tmp_path):
    path = str(tmp_path / "claims.json")
    assert claim_tag("MM", NOON, path) == session_tag(NOON)
    assert claim_tag("MM", NOON, path) == tag_of(session_tick(NOON) + 1)
    assert claim_tag("ZZ", NOON, path) == session_tag(NOON)             # another prefix
    later = NOON + 10 * TAG_TICK_NS
    assert claim_tag("MM", later, path) == session_tag(later)
    assert claim_tag("MM", NOON + DAY, path) == session_tag(NOON + DAY)  # the next day starts afresh
    assert json.loads(open(path).read())["MM"][1] == session_tick(NOON + DAY)


def test_a_torn_file_or_one_that_cannot_be_opened_falls_back_to_the_start_tick(tmp_path, caplog):
    path = tmp_path / "claims.json"
    path.write_text('{"MM": ["2026-11-')
    assert claim_tag("MM", NOON, str(path)) == session_tag(NOON)
    assert claim_tag("MM", NOON, str(path)) == tag_of(session_tick(NOON) + 1)     # rewritten whole
    assert claim_tag("MM", NOON, str(tmp_path / "missing" / "claims.json")) == session_tag(NOON)
    assert "token tags not claimed" in caplog.text
