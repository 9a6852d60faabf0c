"""Hand the terminal to another program (claude for `run`, mitmproxy for `serve`).

Where the OS has exec, modelmux becomes the program: its signals and exit status are the
program's own, and no modelmux process lingers. Windows has no exec (os.execv there
starts a new process and ends this one, so the console stops waiting for it), so the
program runs as a child instead: modelmux forwards the signals meant for it, waits,
and exits with the child's status. MODELMUX_LAUNCH=child forces that path (tests).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence

LAUNCH_ENV = "MODELMUX_LAUNCH"
# Sent to modelmux by a process (kill, a service manager, a closing terminal): the child
# would never see them otherwise.
FORWARDED = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))
# Made by the terminal or console (Ctrl-C, Ctrl-Break), which sends them to every process
# of the foreground group or the console, the child included: forwarding would deliver
# them twice, and Claude Code takes a second Ctrl-C as "quit".
KEYBOARD = tuple(getattr(signal, name) for name in ("SIGINT", "SIGBREAK") if hasattr(signal, name))


def launch_mode(environ: Mapping[str, str], os_name: str = os.name) -> str:
    """`exec`, or `child` on Windows or when $MODELMUX_LAUNCH says so."""
    if os_name == "nt":
        return "child"
    return "child" if environ.get(LAUNCH_ENV) == "child" else "exec"


def hand_over(
    argv: Sequence[str], env: Mapping[str, str], environ: Mapping[str, str], on_start: Callable[[int], None]
) -> int:
    """Run `argv` in the foreground with `env` and return its exit status (exec never
    returns). `on_start` gets the program's pid. Raises OSError if it cannot start."""
    sys.stdout.flush()
    sys.stderr.flush()
    if launch_mode(environ) == "exec":
        on_start(os.getpid())  # exec keeps the pid
        os.execve(argv[0], list(argv), dict(env))
    return run_child(argv, env, on_start)


def run_child(argv: Sequence[str], env: Mapping[str, str], on_start: Callable[[int], None] = lambda pid: None) -> int:
    """The child's exit status; one a signal ended is 128+signal, as a POSIX shell reports it."""
    process = subprocess.Popen(list(argv), env=dict(env))
    on_start(process.pid)
    keyboard_reaches_child = os.name == "nt" or _foreground_of_terminal()

    def relay(signum: int, _frame: object) -> None:
        if signum in KEYBOARD and keyboard_reaches_child:
            return  # the child has it already; modelmux just keeps waiting
        with contextlib.suppress(ProcessLookupError, OSError):
            process.send_signal(signum)

    previous = {number: signal.signal(number, relay) for number in FORWARDED + KEYBOARD}
    try:
        status = process.wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return 128 - status if status < 0 else status


def _foreground_of_terminal() -> bool:
    """Whether this process group owns the terminal, so a Ctrl-C there reaches the child
    (same group) as well. Without a terminal, a SIGINT was sent to modelmux alone."""
    try:
        return os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
    except (OSError, ValueError, AttributeError):
        return False
