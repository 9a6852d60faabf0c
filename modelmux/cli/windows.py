"""The gateway's process on Windows, where `modelmux.cli.procs`' POSIX calls do harm or fail:
os.kill(pid, 0) there does not probe, it ends the process (TerminateProcess), and there
is no fork. Runs only on Windows; the POSIX ones are what Linux tests exercise.
"""

from __future__ import annotations

import ctypes
import subprocess
from pathlib import Path

PROCESS_QUERY_LIMITED_INFORMATION = 0x1000
STILL_ACTIVE = 259
ACCESS_DENIED = 5


def alive(pid: int) -> bool:
    """Whether `pid` runs, asked without touching it: OpenProcess, then its exit code."""
    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, False, pid)
    if not handle:
        return kernel32.GetLastError() == ACCESS_DENIED  # someone else's process, but there
    try:
        code = ctypes.c_ulong()
        return bool(kernel32.GetExitCodeProcess(handle, ctypes.byref(code))) and code.value == STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


def spawn_detached(argv: list[str], log_file: Path) -> int:
    """Start `argv` without a console of its own and outside this console's Ctrl-C group,
    so it outlives the terminal `run` started in. Windows has no zombies to avoid: no fork."""
    flags = subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
    with open(log_file, "ab") as log:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, creationflags=flags)
    return process.pid
