"""The import graph of modelmux, read from the source: no module imports itself back,
through any path, and the pure core (its packages whole) never reaches mitmproxy, httpx or
redis, nor prometheus_client or OpenTelemetry.

Every import counts, wherever it is written: at module level, inside a function (an
import moved there to dodge a cycle still is one) and under `if TYPE_CHECKING:`.
Importing `a.b.c` runs `a` and `a.b` too, so it depends on their `__init__`s as well."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import modelmux

PACKAGE = Path(modelmux.__file__).parent
# The modules that talk to the network or to mitmproxy on purpose, besides the addons
# (modelmux/addons/, the mitmproxy shell): the `modelmux` command, which starts the
# others, `modelmux check` and its live probes, the logins' network code, and the reader
# of recorded flow files. Anything else is pure: a pure module importing one of these
# would be caught.
IO_MODULES = frozenset({
    "modelmux.cli.main",
    "modelmux.cli.check",
    "modelmux.cli.probe",
    "modelmux.cli.capabilities.deep",  # sends the deep check's probes
    "modelmux.cli.capabilities.report",  # names probe's targets
    "modelmux.oauth.login",
    "modelmux.oauth.code_assist",
    "modelmux.oauth.refresher",
    "modelmux.replay.recordings",  # reads and writes mitmproxy's flow files
})
# ... and the Redis client and the exporters of metrics and traces, which only the addons use.
IO_LIBRARIES = frozenset({"mitmproxy", "httpx", "redis", "prometheus_client", "opentelemetry"})
# The pure core, whole: these modules and every module of these packages stay clear of
# mitmproxy and httpx, whatever IO_MODULES lists.
PURE = ("modelmux.attempt", "modelmux.config", "modelmux.credentials", "modelmux.translate", "modelmux.routing",
        "modelmux.secrets", "modelmux.errors")  # fmt: skip
# Each translates Anthropic's Messages to one protocol and back; what they share lives
# outside them (anthropic_side, openai_side, thought_signatures, translated_stream).
TRANSLATORS = ("modelmux.translate.openai_chat", "modelmux.translate.openai_responses", "modelmux.translate.gemini")


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _ours(name: str) -> str | None:
    """The modelmux module an imported name is, or is in (`from m import f`)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


@cache
def _imports(module: str) -> tuple[frozenset[str], frozenset[str]]:
    """(the modelmux modules `module` imports, the top-level names of the others)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    ours: set[str] = set()
    theirs: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] != "modelmux":
                theirs.add(name.split(".")[0])
            elif (found := _ours(name)) is not None:
                ours.add(found)
    for found in list(ours):  # the packages around it run first, except those `module` is in
        while "." in found:
            found = found.rpartition(".")[0]
            if found != "modelmux" and not f"{module}.".startswith(f"{found}."):
                ours.add(found)
    ours.discard(module)
    return frozenset(ours), frozenset(theirs)


def _cycle_through(start: str) -> list[str] | None:
    """A path of imports from `start` back to itself, if there is one."""
    trail: list[str] = []
    done: set[str] = set()

    def walk(module: str) -> list[str] | None:
        if module == start and trail:
            return [*trail, start]
        if module in done or module in trail:
            return None
        trail.append(module)
        for imported in sorted(_imports(module)[0]):
            if (found := walk(imported)) is not None:
                return found
        trail.pop()
        done.add(module)
        return None

    return walk(start)


def _reach(module: str) -> set[str]:
    """`module` and every modelmux module it imports, directly or not."""
    seen = {module}
    todo = [module]
    while todo:
        for imported in _imports(todo.pop())[0]:
            if imported not in seen:
                seen.add(imported)
                todo.append(imported)
    return seen


def test_the_graph_is_read_from_the_source():
    """A guard for the tests below: they see the imports there are."""
    assert "modelmux.config.types" in _imports("modelmux.config.loader")[0]
    assert "modelmux.translate.openai_chat" in _imports("modelmux.translate.registry")[0]
    assert "mitmproxy" in _imports("modelmux.addons.router")[1]
    assert "modelmux.addons.replayer" in _imports("modelmux.cli.main")[0]  # imported inside a function
    assert IO_MODULES <= MODULES.keys()


def test_no_module_imports_itself_back():
    cycles = {" → ".join(cycle) for module in MODULES if (cycle := _cycle_through(module))}
    assert not cycles, "import cycles:\n" + "\n".join(sorted(cycles))


def _reaching_io(modules: Iterable[str]) -> dict[str, list[str]]:
    """Those of `modules` that reach an IO library, each with the modules that import them."""
    reached = {
        module: sorted(f"{other} ({', '.join(sorted(_imports(other)[1] & IO_LIBRARIES))})"
                       for other in _reach(module) if _imports(other)[1] & IO_LIBRARIES)
        for module in modules
    }
    return {module: found for module, found in reached.items() if found}


def test_the_pure_modules_never_reach_mitmproxy_or_httpx():
    assert not _reaching_io(m for m in MODULES if not m.startswith("modelmux.addons") and m not in IO_MODULES)


def test_the_pure_packages_never_reach_mitmproxy_or_httpx():
    assert set(PURE) <= MODULES.keys()
    assert not _reaching_io(m for m in MODULES if any(m == p or m.startswith(f"{p}.") for p in PURE))


def test_no_translator_imports_another():
    def package(module: str) -> str | None:
        return next((p for p in TRANSLATORS if module == p or module.startswith(f"{p}.")), None)

    crossings = sorted(
        f"{module} → {imported}"
        for module in MODULES if (own := package(module)) is not None
        for imported in _imports(module)[0] if package(imported) not in (None, own)
    )
    assert not crossings
