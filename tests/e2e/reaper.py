"""Stop the deployment's processes by session, also when the test process itself was killed.

Every component starts in a session of its own (``start_new_session``), so all it starts (task runners, log
servers, API workers) share that session id, even after its leader has died or when a child renamed itself
with setproctitle. :func:`kill_sessions` sends SIGTERM to every process of the given sessions, waits, then
SIGKILLs what is left.

Run as a script, it is the watchdog the deployment starts first: ``python reaper.py PARENT_PID SESSIONS_FILE``
waits until PARENT_PID (pytest) is gone, then stops the sessions listed in SESSIONS_FILE. When pytest ends
normally it stops the deployment itself and then this watchdog; the watchdog only matters when pytest is killed
with no chance to clean up (SIGKILL, an OOM kill).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path


def session_members(sessions: set[int]) -> list[int]:
    """Pids of the live (non-zombie) processes in ``sessions``, read from /proc."""
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_bytes()
        except OSError:
            continue
        # After "pid (comm) ": state ppid pgrp session ... (comm may contain spaces and parentheses).
        fields = stat[stat.rindex(b")") + 2 :].split()
        if fields[0] != b"Z" and int(fields[3]) in sessions:
            found.append(int(entry))
    return found


def kill_sessions(sessions: set[int], grace: float) -> list[int]:
    """SIGTERM every process of ``sessions``, wait up to ``grace`` seconds, SIGKILL the rest; return those."""
    if not sessions:
        return []
    for pid in session_members(sessions):
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while session_members(sessions) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = session_members(sessions)
    for pid in left:
        _signal(pid, signal.SIGKILL)
    return left


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(OSError):  # gone meanwhile
        os.kill(pid, signum)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main(argv: list[str]) -> int:
    parent, sessions_file = int(argv[1]), Path(argv[2])
    while _alive(parent):
        time.sleep(1)
    try:
        sessions = {int(word) for word in sessions_file.read_text().split()}
    except OSError:
        return 0
    kill_sessions(sessions, grace=15)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
