"""Child processes that die with their owner: the argv prefix that makes the kernel signal a
child when the thread that started it dies (a SIGKILLed `mmaudit run` must not leave its PTP lab
or its venue process running), and whether the owner a leftover names is still alive."""
from __future__ import annotations

import os
import shutil

__all__ = ["die_with_owner", "pid_alive"]


def pid_alive(pid: int) -> bool:
    """Whether a process `pid` exists (another user's included): what a leftover's owner pid is
    checked with before the leftover is removed."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:      # someone else's live process
        return True
    return True


def die_with_owner(signal_name: str) -> list[str]:
    """`setpriv --pdeathsig SIGNAL` (util-linux: it sets PR_SET_PDEATHSIG and execs the child)
    to put before a child's argv; [] without setpriv (the child then outlives a killed owner
    until its own bounds end it). A Popen preexec_fn calling prctl would do the same but runs
    Python between fork and exec, which is unsafe with other threads."""
    return ["setpriv", "--pdeathsig", signal_name] if shutil.which("setpriv") else []
