"""What the bench measures, as data, and the processes behind it.

A target is a base URL the same client code sends the same Claude Code request to:
the upstream itself (the floor), bare mitmdump in front of it (mitmproxy's own cost),
modelmux passing through to an Anthropic-protocol provider, the same with a pool of
two credentials (which sends every request through modelmux's failover relay),
modelmux translating to each protocol in TRANSLATIONS, and `modelmux serve` (what a
user runs) for passthrough and Chat. The pool once more with its state shared through a
Redis server the bench starts (`state: {backend: redis}`, docs/team.md) shows what a
fleet's shared state costs a request. A protocol modelmux learns to translate is one
more line in TRANSLATIONS, plus how the fake upstream speaks it (upstreams.PROTOCOLS)
and the stream transform to time in-process (measure.STREAM_TRANSFORMS).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pty
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MITMDUMP = BIN / "mitmdump"
MITMWEB = BIN / "mitmweb"
CLAUDE_MODEL = "claude-sonnet-4-20250514"
PASSTHROUGH_UPSTREAM_MODEL = "glm-4.6"  # the route rewrites the model, so the answer's is restored
KEY = "sk-bench-provider-key"
# A provider with more than one credential sends every request through modelmux's
# failover relay (modelmux/addons/relay.py) instead of letting mitmproxy send it.
POOL_MODEL = "claude-bench-pool"
POOL_PROVIDER = "fake_pool"
POOL_CREDENTIALS = {"a": "bench-key-aaaa1111", "b": "bench-key-bbbb2222"}  # label → key, tried in this order
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Translation:
    protocol: str  # as routes.yaml and upstreams.PROTOCOLS name it
    base_path: str  # what the provider's base_url adds to the upstream's address
    auth: str
    model: str  # what the client asks for; the route matches it exactly

    @property
    def provider(self) -> str:
        return self.protocol.replace("-", "_")

    @property
    def upstream_model(self) -> str:
        """What the route asks the upstream for."""
        return f"{self.model}-upstream"


TRANSLATIONS = [
    Translation("openai-chat", "/v1", "Authorization: Bearer {key}", "gpt-bench"),
    Translation("openai-responses", "/v1", "Authorization: Bearer {key}", "responses-bench"),
    Translation("gemini", "/v1beta", "x-goog-api-key: {key}", "gemini-bench"),
]


# What each kind of gateway runs besides `-q --mode reverse:UPSTREAM@PORT` and lazy
# connections. The baseline is mitmdump with one 3-line addon that streams SSE answers
# the way modelmux does (sse_stream.py says why); modelmux brings its own addons.
# "serve" is `modelmux serve`, which builds its own command line (ServeGateway).
GATEWAY_ARGS: dict[str, list[str]] = {
    "mitmdump": ["-s", str(REPO / "bench" / "sse_stream.py")],
    "modelmux": [],
    "serve": [],
}
MODELMUX_GATEWAYS = ("modelmux", "serve")


@dataclass(frozen=True)
class Target:
    key: str
    label: str
    gateway: str | None  # a key of GATEWAY_ARGS; None: the upstream itself
    model: str
    restores_model: bool = False  # the answer must name the requested model again
    twin: str | None = None  # a `modelmux serve` target: the key of the script target it runs the same request as
    shared_state: bool = False  # its routes.yaml keeps the pools' state on the bench's Redis server

    @property
    def is_gateway(self) -> bool:
        return self.gateway is not None

    @property
    def is_modelmux(self) -> bool:
        return self.gateway in MODELMUX_GATEWAYS


DIRECT = Target("direct", "direct (floor)", None, CLAUDE_MODEL)
MITMDUMP_BARE = Target("mitmdump", "mitmdump (streams SSE)", "mitmdump", CLAUDE_MODEL)
PASSTHROUGH = Target("anthropic", "modelmux → anthropic", "modelmux", CLAUDE_MODEL, restores_model=True)
POOL = Target("anthropic-pool", "modelmux → anthropic, pool of 2 (failover relay)", "modelmux", POOL_MODEL,
              restores_model=True)  # fmt: skip
# Round-robin, unlike POOL's fill-first, so that every request takes the fleet's turn (a
# Redis round trip): the most a pool's request asks of Redis. Locally both strategies
# cost the same (one pass over two credentials).
REDIS_POOL = Target("anthropic-pool-redis", "modelmux → anthropic, pool of 2, state on Redis", "modelmux", POOL_MODEL,
                    restores_model=True, shared_state=True)  # fmt: skip
TRANSLATED = [Target(t.protocol, f"modelmux → {t.protocol}", "modelmux", t.model, restores_model=True) for t in TRANSLATIONS]
# What a user runs, beside the script the other modelmux columns run: the passthrough
# and one translation are enough to show what `serve` adds.
SERVED = [
    Target(f"serve-{t.key}", t.label.replace("modelmux", "modelmux serve"), "serve", t.model, restores_model=True,
           twin=t.key)
    for t in (PASSTHROUGH, TRANSLATED[0])
]  # fmt: skip
TARGETS = [DIRECT, MITMDUMP_BARE, PASSTHROUGH, POOL, REDIS_POOL, *TRANSLATED, *SERVED]


def provider_yaml(name: str, protocol: str, base_url: str, auth: str, credentials: dict[str, str], extra: str = "") -> str:
    listed = ", ".join(f"{{label: {label}, key: {key}}}" for label, key in credentials.items())
    return (f"  {name}:\n    protocol: {protocol}\n    base_url: {base_url}\n    auth: \"{auth}\"\n{extra}"
            f"    credentials: [{listed}]\n")  # fmt: skip


def route_yaml(match: str, provider: str, model: str) -> str:
    return f"  - match: {match}\n    provider: {provider}\n    model: {model}\n"


def routes_yaml(upstream: int, port: int, redis_url: str | None = None) -> str:
    """With `redis_url`, the pools' state is shared there, and the pool takes turns (REDIS_POOL)."""
    base = f"http://127.0.0.1:{upstream}"
    # fill-first: every request tries credential a first, so a 429 for a's key
    # (measure.failover) costs each request exactly one failover.
    strategy = "round-robin" if redis_url else "fill-first"
    providers = [
        provider_yaml("fake", "anthropic", base, "x-api-key: {key}", {"bench": KEY}),
        provider_yaml(POOL_PROVIDER, "anthropic", base, "x-api-key: {key}", POOL_CREDENTIALS, f"    strategy: {strategy}\n"),
    ]
    # Ordered, first match wins: the pool's exact model before claude-*.
    routes = [route_yaml(POOL_MODEL, POOL_PROVIDER, PASSTHROUGH_UPSTREAM_MODEL),
              route_yaml("claude-*", "fake", PASSTHROUGH_UPSTREAM_MODEL)]  # fmt: skip
    for t in TRANSLATIONS:
        providers.append(provider_yaml(t.provider, t.protocol, base + t.base_path, t.auth, {"bench": KEY}))
        routes.append(route_yaml(t.model, t.provider, t.upstream_model))
    state = f"state: {{backend: redis, url: \"{redis_url}\"}}\n" if redis_url else ""
    return (f"server:\n  host: 127.0.0.1\n  port: {port}\n{state}providers:\n{''.join(providers)}"
            f"routes:\n{''.join(routes)}")  # fmt: skip


# -- processes ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """Children get SIGTERM if the bench itself dies without cleaning up (Linux)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def child_environment(workdir: Path, repo: Path = REPO) -> dict[str, str]:
    """The environment of every process the bench starts. The checkout's modelmux (or
    `repo`'s, another tree's: bench/against.py) comes first on the path: mitmdump imports
    what `pip install -e` installed, which may be another checkout (a worktree's bench
    would measure the main one's code). The state directory (credential state, usage
    records, pid files) is the run's own, not the user's."""
    environ = {k: v for k, v in os.environ.items() if k != "MODELMUX_LAUNCH"}  # `modelmux serve` execs mitmdump
    environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(repo), os.environ.get("PYTHONPATH")) if p)
    environ["MODELMUX_STATE_DIR"] = str(workdir / "state")
    return environ


class Process:
    """A child process of the bench, with its CPU time and memory read from /proc."""

    def __init__(self, name: str, argv: list[str], log: Path, repo: Path = REPO) -> None:
        self.name, self.argv, self.log, self.repo = name, argv, log, repo
        self.popen: subprocess.Popen | None = None

    def start(self) -> None:
        self.spawn()

    def spawn(self, stdout: int | None = None, stderr: int | None = None) -> None:
        with self.log.open("ab") as log:
            self.popen = subprocess.Popen(
                self.argv, stdout=stdout or log, stderr=stderr or log, stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent, cwd=self.repo, env=child_environment(self.log.parent, self.repo),  # noqa: PLW1509 - the bench starts no threads
            )  # fmt: skip

    @property
    def pid(self) -> int:
        assert self.popen
        return self.popen.pid

    def stop(self) -> None:
        if self.popen and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()

    def cpu_seconds(self) -> float:
        """User + system time of every thread of the process so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


class UpstreamProcess(Process):
    def __init__(self, log: Path) -> None:
        super().__init__("upstream", [sys.executable, "-m", "bench.upstreams"], log)
        self.port = 0

    def start(self) -> None:
        self.spawn(stdout=subprocess.PIPE)
        assert self.popen and self.popen.stdout
        line = self.popen.stdout.readline().decode()
        if not line.startswith("port "):
            raise RuntimeError(f"the bench upstream did not start:\n{self.tail()}")
        self.port = int(line.split()[1])


class RedisProcess(Process):
    """Debian's redis-server on a free port, its files in the run's directory, for the
    targets whose pools share their state (Target.shared_state)."""

    def __init__(self, workdir: Path) -> None:
        server = shutil.which("redis-server")
        if server is None:
            raise RuntimeError("the Redis column needs redis-server (`sudo apt-get install redis-server`)")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        argv = [server, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(workdir), "--save", "",
                "--appendonly", "no"]
        super().__init__("redis", argv, workdir / "redis.log")

    def start(self) -> None:
        self.spawn()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return
            time.sleep(0.02)
        raise RuntimeError(f"redis-server did not start:\n{self.tail()}")


class Gateway(Process):
    """mitmdump or mitmweb in reverse mode in front of the upstream, with modelmux or without."""

    def __init__(self, name: str, upstream: int, workdir: Path, modelmux: bool, web: bool = False,
                 extra: list[str] | None = None, redis_url: str | None = None, repo: Path = REPO) -> None:
        """`repo`: the tree whose modelmux it runs (the checkout's, or another's: bench/against.py)."""
        self.port = free_port()
        self.redis_url = redis_url
        mode = f"reverse:http://127.0.0.1:{upstream}@127.0.0.1:{self.port}"
        argv = [str(MITMWEB if web else MITMDUMP), "-q", "--mode", mode, "--set", "connection_strategy=lazy"]
        if modelmux:
            argv += ["-s", str(repo / "addons" / "router.py"), "--set", f"modelmux_config={self.config(workdir, name, upstream)}"]
        if web:
            argv += ["--set", "web_open_browser=false", "--set", f"web_port={free_port()}"]
        super().__init__(name, argv + (extra or []), workdir / f"{name}.log", repo)

    def config(self, workdir: Path, name: str, upstream: int) -> Path:
        """The routes.yaml this gateway runs, written."""
        path = workdir / f"{name}.routes.yaml"
        path.write_text(routes_yaml(upstream, self.port, self.redis_url))
        return path

    def start(self, timeout: float = 30) -> None:
        self.spawn()
        self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float) -> None:
        assert self.popen
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.tail()}")
            try:
                # modelmux answers /healthz itself; bare mitmdump forwards it to the upstream.
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} never became healthy:\n{self.tail()}")


class ServeGateway(Gateway):
    """`modelmux serve --config ROUTES --port PORT`, as a user runs it in a terminal: the
    launcher's own command line (modelmux.cli.launcher.gateway_command: mitmdump without
    `-q`, so it prints modelmux's line per request and its log), exec'd in place, writing to
    a pseudo-terminal. `cat` reads that terminal, as a terminal emulator would, into the
    log."""

    def __init__(self, name: str, upstream: int, workdir: Path) -> None:
        self.port = free_port()
        self.redis_url = None
        argv = [sys.executable, "-m", "modelmux.cli.main", "serve",
                "--config", str(self.config(workdir, name, upstream)), "--port", str(self.port)]  # fmt: skip
        Process.__init__(self, name, argv, workdir / f"{name}.log")
        self.reader: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> None:
        terminal, screen = pty.openpty()
        try:
            with self.log.open("ab") as log:
                self.reader = subprocess.Popen(["cat"], stdin=terminal, stdout=log, stderr=subprocess.DEVNULL,
                                               preexec_fn=_die_with_parent)  # noqa: PLW1509
            self.spawn(stdout=screen, stderr=screen)
        finally:
            os.close(terminal)
            os.close(screen)
        self.wait_healthy(timeout)

    def stop(self) -> None:
        super().stop()  # the gateway's end closes the terminal, and cat reads its end
        if self.reader and self.reader.poll() is None:
            try:
                self.reader.wait(5)
            except subprocess.TimeoutExpired:
                self.reader.kill()
                self.reader.wait()


def max_flows_supported() -> bool:
    """Whether modelmux has its mitmweb flow-retention option yet."""
    return any("modelmux_max_flows" in p.read_text() for p in (REPO / "modelmux" / "addons").glob("*.py"))
