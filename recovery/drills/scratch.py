"""Drill scratch directories: journal.scratch (moved there so the journal's own stress runs and
tests can use it; the journal package imports nothing of recovery). Kept for importers of this name.
"""
from journal.scratch import LOCK_NAME, scratch_dir

__all__ = ["LOCK_NAME", "scratch_dir"]
