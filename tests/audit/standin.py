"""A stand-in for a tool mmaudit runs (ethtool, phc_ctl) that answers only when started the way
audit.childproc starts children: in a session of its own, with the job's signals held."""
import sys


def write_session_checking_tool(path, output: str) -> str:
    """An executable at `path` printing `output` when started in a session of its own with SIGHUP
    and SIGINT blocked, else exiting 1 saying which was missing; returns the path as a string."""
    path.write_text(f"""#!{sys.executable}
import os, signal, sys
own_session = os.getsid(0) == os.getpid()
held = {{signal.SIGHUP, signal.SIGINT}} <= signal.pthread_sigmask(signal.SIG_BLOCK, [])
if not (own_session and held):
    sys.exit(f"own session {{own_session}}, job signals held {{held}}")
sys.stdout.write({output!r})
""")
    path.chmod(0o755)
    return str(path)
