"""Live drills: I/O shells that run the real engine and runner against the embedded venue on
loopback, inject faults, and judge the outcome from the venue's own records.

Owns nothing shared: each drill is its own module (risk: the fail-closed fault matrix). Drills
may import mm_core, audit and journal; the CLI's `mmaudit drill ...` commands call them.
"""
