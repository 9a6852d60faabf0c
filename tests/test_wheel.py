"""The wheel is the product: built from this checkout, installed into a clean virtual
environment, and run from outside the checkout as a user of `pipx install` would run
it, against local fakes of every protocol. Nothing here may reach the checkout: the
installed package, its bundled routes.yaml and its addon list must be enough."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

import gemini_upstream
import openai_upstream
import responses_upstream
from gateway import end_process, free_port
from upstream import Upstream

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.timeout(600)  # the build and the clean install take a minute or two


@dataclass
class Installed:
    wheel: Path
    venv: Path

    @property
    def bin(self) -> Path:
        return self.venv / ("Scripts" if sys.platform == "win32" else "bin")


def run(*argv: str | Path, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{argv}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """`pip wheel .`, then `pip install` of that file alone into a new venv, which
    resolves the dependencies afresh, as a user's install does."""
    work = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    run(*pip, "wheel", "--no-deps", "-q", "-w", work / "dist", REPO)
    wheel = next((work / "dist").glob("modelmux-*.whl"))
    base = getattr(sys, "_base_executable", sys.executable)  # not this venv's python: a clean one
    run(base, "-m", "venv", work / "venv")
    installed = Installed(wheel, work / "venv")
    run(installed.bin / "python", "-m", "pip", "install", "--disable-pip-version-check", "-q", wheel)
    return installed


def test_the_wheel_holds_every_package_the_bundled_routes_yaml_and_the_license(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    packages = sorted(str(p.parent.relative_to(REPO)) for p in (REPO / "modelmux").rglob("__init__.py"))
    assert [p for p in packages if f"{p}/__init__.py" not in names] == []
    modules = sorted(str(p.relative_to(REPO)) for p in (REPO / "modelmux").rglob("*.py"))
    assert [m for m in modules if m not in names] == []
    assert {"modelmux/routes.yaml", "modelmux/config/routes.schema.json", "modelmux/addons/chain.py"} <= names
    static = sorted(str(p.relative_to(REPO)) for p in (REPO / "modelmux" / "static").iterdir() if p.is_file())
    assert [f for f in static if f not in names] == []  # the overview page's files
    assert (REPO / "routes.yaml").read_bytes() == zipfile.ZipFile(installed.wheel).read("modelmux/routes.yaml")
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)


@pytest.fixture
def outside(tmp_path: Path, installed: Installed) -> dict[str, str]:
    """An environment far from the checkout: a scratch working directory and home, the
    venv's bin/ first on PATH, nothing that could import the checkout's code."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "MODELMUX_STATE_DIR")}
    return env | {"HOME": str(home), "PATH": f"{installed.bin}{os.pathsep}{os.environ.get('PATH', '')}"}


def test_the_installed_modelmux_imports_only_itself(installed: Installed, outside: dict[str, str], tmp_path: Path) -> None:
    where = run(installed.bin / "python", "-c", "import modelmux.addons.chain as c, modelmux; print(modelmux.__file__)",
                env=outside, cwd=tmp_path).stdout.strip()
    assert Path(where).is_relative_to(installed.venv), where
    shown = run(installed.bin / "modelmux", "--help", env=outside, cwd=tmp_path).stdout
    assert "    serve     run the gateway in the foreground\n" in shown


ROUTES = """
server: {{port: {port}}}
providers:
  vendor:
    protocol: anthropic
    base_url: "{anthropic}"
    credentials: [{{label: main, key: sk-vendor-wheel-1111}}]
  chat:
    protocol: openai-chat
    base_url: "{chat}/v1"
    credentials: [{{label: main, key: sk-chat-wheel-2222}}]
  responses:
    protocol: openai-responses
    base_url: "{responses}/v1"
    credentials: [{{label: main, key: sk-responses-wheel-3333}}]
  gemini:
    protocol: gemini
    base_url: "{gemini}/v1beta"
    credentials: [{{label: main, key: AIzaSy-wheel-4444}}]
routes:
  - {{match: "claude-*", provider: vendor}}
  - {{match: "gpt-4*", provider: chat}}
  - {{match: "gpt-5*", provider: responses}}
  - {{match: "gemini-*", provider: gemini}}
"""
EXPECTED = {
    "claude-sonnet-4-5": "Hello from the fake upstream.",
    "gpt-4o": openai_upstream.GREETING,
    "gpt-5.3-codex": responses_upstream.GREETING,
    "gemini-2.5-flash": gemini_upstream.GREETING,
}


@pytest.fixture
def fakes() -> Iterator[dict[str, Upstream]]:
    with Upstream() as anthropic, Upstream() as chat, Upstream() as responses, Upstream() as gemini:
        chat.reply = openai_upstream.openai_like
        responses.reply = responses_upstream.responses_like
        gemini.reply = gemini_upstream.gemini_like
        yield {"anthropic": anthropic, "chat": chat, "responses": responses, "gemini": gemini}


def serve(installed: Installed, env: dict[str, str], cwd: Path, port: int, *args: str) -> subprocess.Popen:
    log = (cwd / f"serve-{port}.log").open("wb")
    process = subprocess.Popen([str(installed.bin / "modelmux"), "serve", *args], env=env, cwd=cwd,
                               stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, (cwd / f"serve-{port}.log").read_text()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    end_process(process, 5)
    raise AssertionError(f"never healthy:\n{(cwd / f'serve-{port}.log').read_text()}")


def test_the_installed_gateway_translates_every_protocol(
    installed: Installed, outside: dict[str, str], tmp_path: Path, fakes: dict[str, Upstream]
) -> None:
    port = free_port()
    config = tmp_path / "routes.yaml"  # found in the working directory, as a user's would be
    config.write_text(ROUTES.format(port=port, **{name: fake.url for name, fake in fakes.items()}))
    process = serve(installed, outside, tmp_path, port)
    try:
        health = httpx.get(f"http://127.0.0.1:{port}/healthz").json()
        assert health["config"]["path"] == str(config)
        for model, text in EXPECTED.items():
            for stream in (False, True):
                body = {"model": model, "max_tokens": 16, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
                answer = httpx.post(f"http://127.0.0.1:{port}/v1/messages", json=body, timeout=30)
                assert answer.status_code == 200, answer.text
                if stream:
                    deltas = [json.loads(line[6:])["delta"].get("text", "") for line in answer.text.splitlines()
                              if line.startswith("data: ") and '"content_block_delta"' in line]
                    assert ("".join(deltas), answer.text.rstrip().splitlines()[-2]) == (text, "event: message_stop")
                else:
                    # a translated text block says it has no citations; the fake Anthropic's passes as it is
                    block = {"type": "text", "text": text} | ({} if model.startswith("claude") else {"citations": None})
                    assert answer.json()["content"] == [block]
    finally:
        end_process(process, 10)
    # The messages; the gateway also asked each model list (GET) for its models' facts.
    posted = {name: [r for r in fake.received if r.method == "POST"] for name, fake in fakes.items()}
    assert [r.path for r in posted["chat"]] == ["/v1/chat/completions"] * 2
    assert [r.path for r in posted["responses"]] == ["/v1/responses"] * 2
    assert [r.path for r in posted["gemini"]] == [
        "/v1beta/models/gemini-2.5-flash:generateContent", "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
    ]
    assert [r.headers["x-api-key"] for r in posted["anthropic"]] == ["sk-vendor-wheel-1111"] * 2
    state = Path(outside["HOME"]) / ".local" / "state" / "modelmux"
    kept = sorted("".join(p.suffixes) for p in state.iterdir() if p.name.startswith("routes-"))
    assert kept == [".state.json", ".usage.jsonl"]  # credential state, usage records
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "routes.yaml", f"serve-{port}.log"]


def test_with_no_routes_yaml_anywhere_it_serves_the_bundled_one(
    installed: Installed, outside: dict[str, str], tmp_path: Path
) -> None:
    """The bundled example (passthrough to Anthropic) from inside the installed package,
    with its state in the state directory, not in site-packages."""
    port = free_port()
    process = serve(installed, outside, tmp_path, port, "--port", str(port))
    try:
        health = httpx.get(f"http://127.0.0.1:{port}/healthz").json()
        assert Path(health["config"]["path"]).is_relative_to(installed.venv)
        assert health["config"]["providers"] == ["anthropic"]
        models = httpx.get(f"http://127.0.0.1:{port}/v1/models").json()
        assert {"opus", "sonnet", "haiku"} <= {model["id"] for model in models["data"]}  # its aliases
        page = httpx.get(f"http://127.0.0.1:{port}/modelmux/overview.js")  # the overview's files, from the wheel
        assert (page.status_code, page.text) == (200, (REPO / "modelmux" / "static" / "overview.js").read_text())
    finally:
        end_process(process, 10)
    site = Path(health["config"]["path"]).parent
    assert sorted(p.name for p in site.glob("routes*")) == ["routes.yaml"]
    own = Path(outside["HOME"]) / ".config" / "modelmux"
    assert (tmp_path / f"serve-{port}.log").read_text().splitlines()[:2] == [
        f"modelmux: no routes.yaml in this directory or in {own}: using the bundled example, which passes every "
        f"model through to Anthropic; write your own at {own / 'routes.yaml'}",
        f"modelmux: serving {site / 'routes.yaml'} on http://127.0.0.1:{port}  "
        f"overview: http://127.0.0.1:{port}/modelmux/overview",
    ]
