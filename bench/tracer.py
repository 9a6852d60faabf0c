"""The tracer bench/walk.py counts moves with, inside a gateway process.

`python -m bench.tracer --into FILE --upstream-port N -- MITMDUMP_ARGS` runs mitmdump
with sys.monitoring watching every modelmux function start, return, suspend and resume
(foreign code is switched off after its first event, so it costs next to nothing), and
writes what it sees as JSON lines: the tracer decides nothing about layers or windows,
bench/walk.py does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import CodeType, FrameType
from typing import Any, TextIO

START = "Router.request"  # the hook a request's walk starts at (its function's qualified name)
STREAM_CALLER = "HttpStream.state_stream_response_body"  # where mitmproxy calls a response's stream callable
_GENERATOR = 0x20  # inspect.CO_GENERATOR
_COROUTINE = 0x80  # inspect.CO_COROUTINE


@dataclass
class Active:
    """A running (or suspended) modelmux function."""

    where: str  # module:qualname
    born: int  # the tracer's event number when it started
    back_to: str | None = None  # module:qualname of the caller in another module, while it has control


class Tracer:
    """Writes one JSON line per event: a walk's `start` (its entry from foreign code,
    or a suspended coroutine's resumption), each `move`, a `mark` when a request is
    handed over for sending, and the walk's `end` when its first function returns or
    suspends. Only from the first START on."""

    def __init__(self, out: TextIO, upstream_port: int) -> None:
        import modelmux

        self.out, self.upstream_port = out, upstream_port
        self.package = str(Path(modelmux.__file__).resolve().parent) + os.sep
        # They only hand mitmproxy's events on: the Chain, and the joining of handlers it and internals.Last use.
        self.passing = {self.package + os.path.join("addons", name) for name in ("chain.py", "dispatch.py")}
        self.modules: dict[CodeType, str | None] = {}
        self.frames: dict[int, tuple[FrameType, Active]] = {}
        self.root: FrameType | None = None
        self.count = 0
        self.armed = False
        self.markers: dict[CodeType, str] = {}
        self.thread = threading.get_ident()  # the event loop's; work mitmproxy or modelmux hands to threads is not followed

    def install(self) -> None:
        monitoring = sys.monitoring
        tool = monitoring.PROFILER_ID
        monitoring.use_tool_id(tool, "bench.tracer")
        events = monitoring.events
        for event, callback in ((events.PY_START, self._start), (events.PY_RESUME, self._resume),
                                (events.PY_THROW, self._resume), (events.PY_RETURN, self._return),
                                (events.PY_UNWIND, self._return), (events.PY_YIELD, self._yield)):  # fmt: skip
            monitoring.register_callback(tool, event, callback)
        monitoring.set_events(tool, events.PY_START | events.PY_RESUME | events.PY_THROW | events.PY_RETURN
                              | events.PY_UNWIND | events.PY_YIELD)  # fmt: skip
        sys.set_coroutine_origin_tracking_depth(32)  # who created a task's coroutine: see _spawner

    def add_markers(self) -> None:
        """Where a request leaves modelmux: mitmproxy assembling its head, or the relay's
        Sender writing it (modelmux/addons/sender.py)."""
        from mitmproxy.net.http.http1 import assemble

        from modelmux.addons import sender

        self.markers = {assemble.assemble_request_head.__code__: "mitmproxy", sender._Connection.send.__code__: "sender"}

    # sys.monitoring callbacks: `sys._getframe(1)` is the monitored function's frame.

    def _start(self, code: CodeType, offset: int) -> object:
        if threading.get_ident() != self.thread:
            return None
        if code in self.markers:  # the Sender's is modelmux's own, and its walk goes on
            self._mark(code, sys._getframe(1))
        module = self._module(code)
        if module is None:
            return None if code in self.markers else sys.monitoring.DISABLE
        frame = sys._getframe(1)
        self.count += 1
        active = Active(f"{module}:{code.co_qualname}", self.count)
        self.frames[id(frame)] = (frame, active)
        if code.co_qualname == START:
            self.armed = True
        caller = self._caller(frame)
        if caller is None:
            spawner = self._spawner(frame)
            self._open(frame, active, "spawn" if spawner else "call", spawner or _foreign(frame.f_back))
            if spawner and _module_of(spawner) != module:
                self._write(e="move", src=spawner, dst=active.where, kind="spawn")
        elif _module_of(caller.where) != module:
            active.back_to = caller.where
            self._write(e="move", src=caller.where, dst=active.where, kind="call")
        return None

    def _resume(self, code: CodeType, offset: int, exception: object = None) -> object:
        if threading.get_ident() != self.thread:
            return None
        module = self._module(code)
        if module is None:
            return sys.monitoring.DISABLE if exception is None else None
        frame = sys._getframe(1)
        _, active = self.frames.get(id(frame), (None, Active(f"{module}:{code.co_qualname}", 0)))
        caller = self._caller(frame)
        if caller is None:
            self._open(frame, active, "resume", _foreign(frame.f_back))
        elif code.co_flags & _GENERATOR and _module_of(caller.where) != module:
            active.back_to = caller.where  # next() from another module is a move, as a call is
            self._write(e="move", src=caller.where, dst=active.where, kind="resume")
        return None

    def _return(self, code: CodeType, offset: int, value: object) -> object:
        return self._leave(code, value, finished=True)

    def _yield(self, code: CodeType, offset: int, value: object) -> object:
        return self._leave(code, value, finished=False)

    def _leave(self, code: CodeType, value: object, finished: bool) -> object:
        """A function returns or raises (`finished`), or yields: a generator to its
        consumer, a coroutine to the event loop (no move)."""
        if threading.get_ident() != self.thread:
            return None
        if self._module(code) is None:
            return None if isinstance(value, BaseException) else sys.monitoring.DISABLE  # PY_UNWIND stays on
        frame = sys._getframe(2)
        _, active = (self.frames.pop if finished else self.frames.get)(id(frame), (None, None))
        if active is not None and active.back_to is not None and (finished or code.co_flags & _GENERATOR):
            self._write(e="move", src=active.where, dst=active.back_to, kind="return" if finished else "yield")
            active.back_to = None
        if frame is self.root:
            self._close()
        return None

    # the walk's bookkeeping

    def _module(self, code: CodeType) -> str | None:
        try:
            return self.modules[code]
        except KeyError:
            module = self.modules[code] = self._module_at(code.co_filename)
            return module

    def _module_at(self, filename: str) -> str | None:
        """The dotted name, inside modelmux, of the module in `filename`; None outside it,
        and for the modules that only hand mitmproxy's events on (addons/chain.py, dispatch.py)."""
        if not filename.startswith(self.package) or filename in self.passing:
            return None
        return filename[len(self.package) :].removesuffix(".py").replace(os.sep, ".").removesuffix(".__init__")

    def _caller(self, frame: FrameType) -> Active | None:
        """The nearest modelmux function above `frame`, through any foreign frames."""
        above = frame.f_back
        while above is not None:
            if self._module(above.f_code) is not None:
                known = self.frames.get(id(above))
                return known[1] if known else Active(f"{self._module(above.f_code)}:{above.f_code.co_qualname}", 0)
            above = above.f_back
        return None

    def _spawner(self, frame: FrameType) -> str | None:
        """The modelmux function that created the coroutine a task is starting (asyncio's
        create_task or ensure_future), from the coroutine's recorded origin."""
        if not frame.f_code.co_flags & _COROUTINE:
            return None
        try:
            task = asyncio.current_task()
        except RuntimeError:
            return None
        coroutine = task.get_coro() if task is not None else None
        if coroutine is None or getattr(coroutine, "cr_frame", None) is not frame:
            return None
        for filename, _, name in getattr(coroutine, "cr_origin", None) or ():
            if (module := self._module_at(filename)) is not None:
                return f"{module}:{name}"
        return None

    def _open(self, frame: FrameType, active: Active, kind: str, via: str) -> None:
        if self.root is not None:
            self._close()  # never expected: a walk ends when its first frame returns or suspends
        self.root = frame
        self._write(e="start", root=active.where, kind=kind, via=via, born=active.born, at=self.count,
                    chunk=_chunk(frame) if via.endswith(STREAM_CALLER) else None)

    def _close(self) -> None:
        self.root = None
        self._write(e="end")
        if self.armed:
            self.out.flush()

    def _mark(self, code: CodeType, frame: FrameType) -> None:
        if self.markers[code] == "sender":  # _Connection.send(head, body)
            host = re.search(rb"\r\nhost: [^\r]*:([0-9]+)\r\n", frame.f_locals.get("head") or b"")
            if host is None:
                return
            port = int(host[1])
        else:
            request = frame.f_locals.get("request")
            port = getattr(request, "port", None)
        self._write(e="mark", by=self.markers[code], upstream=port == self.upstream_port)

    def _write(self, **event: Any) -> None:
        if self.armed:
            self.out.write(json.dumps(event) + "\n")


def _module_of(where: str) -> str:
    return where.partition(":")[0]


def _foreign(frame: FrameType | None) -> str:
    if frame is None:
        return "?"
    return f"{frame.f_globals.get('__name__', '?')}:{frame.f_code.co_qualname}"


def _chunk(frame: FrameType) -> str | None:
    """What a stream callable was handed: its first argument, shortened."""
    code = frame.f_code
    names = code.co_varnames[: code.co_argcount]
    value = frame.f_locals.get(names[-1]) if names else None
    return value[:400].decode("utf-8", "replace") if isinstance(value, bytes) else None


def gateway(trace_into: Path, upstream_port: int, mitmdump_args: list[str]) -> int:
    """mitmdump, traced: what the child process runs."""
    with trace_into.open("w") as out:
        tracer = Tracer(out, upstream_port)
        tracer.install()
        tracer.add_markers()
        from mitmproxy.tools.main import mitmdump

        mitmdump(mitmdump_args)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tracer", description=__doc__.splitlines()[0])
    parser.add_argument("--into", type=Path, required=True, help="the file the events are written to")
    parser.add_argument("--upstream-port", type=int, required=True, help="a request sent to this port has left modelmux")
    parser.add_argument("mitmdump", nargs="*", help="mitmdump's arguments, after --")
    args = parser.parse_args(argv)
    return gateway(args.into, args.upstream_port, args.mitmdump)


if __name__ == "__main__":
    sys.exit(main())
