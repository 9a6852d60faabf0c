"""A long session with the real Claude Code CLI on a model whose window is small: a fake
OpenAI upstream that holds 64,000 tokens (counted as it reports them in `usage`) and
answers OpenAI's own `context_length_exceeded` error beyond that, and a conversation of
`claude -p --continue` turns, each adding some 7,500 tokens, that grows well past it.

Told the window by the launcher (routes.yaml gives it), Claude Code compacts before the
upstream ever refuses. Not told (no context_window: it assumes 200,000), it runs into the
refusal, which the gateway restates as "prompt is too long" (modelmux/translate/overflow.py), and
Claude Code compacts then. Either way the session goes on, and the user never sees the
error."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from claude_session import Launcher, started
from gateway import Gateway
from openai_upstream import error_reply, is_models, models_reply, openai_like, sse, text_chunks, usage
from upstream import Behaviour, Received, Stream, Upstream

pytestmark = pytest.mark.claude_code

PROFILE = "small-window"
MODEL = "gpt-small-window"
WINDOW = 64000
TURNS = 9
NOTE_WORDS = 4000  # ~7,500 tokens of each turn's note, as the fake counts them
SUMMARY_ASK = "Your task is to create a detailed summary"
CONTINUED = "This session is being continued from a previous conversation"
ERROR_WORDS = ("prompt is too long", "context length", "API Error", "context_length_exceeded")


def tokens(body: dict) -> int:
    """The fake's token count of a request: a character count over four, as rough as any
    tokenizer estimate and, above all, the number its `usage` reports to Claude Code."""
    return len(json.dumps(body, ensure_ascii=False)) // 4


def note(turn: int) -> str:
    return f"Turn {turn}: keep these notes. " + " ".join(f"n{turn}x{i}" for i in range(NOTE_WORDS))


def answer(turn: int) -> str:
    return f"Noted turn {turn}."


@dataclass
class SmallModel:
    """The fake model: answers each turn's note, writes a summary when asked for one, and
    refuses (OpenAI's 400 context_length_exceeded) a request beyond WINDOW tokens."""

    requests: list[tuple[str, int]] = field(default_factory=list)  # (what it was, tokens)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: Received) -> Behaviour:
        if is_models(request):
            return models_reply(request)
        if not request.path.endswith("/chat/completions"):
            return openai_like(request)
        body = request.json()
        count = tokens(body)
        # The last user message: Claude Code 2.1.197 puts system messages after it for a
        # model not named claude-* (its mid_conversation_system capability).
        last = json.dumps(next(m for m in reversed(body["messages"]) if m["role"] == "user"), ensure_ascii=False)
        kind = "summary" if SUMMARY_ASK in last else "turn" if "keep these notes" in last else "other"
        if count > WINDOW:
            with self.lock:
                self.requests.append(("refused " + kind, count))
            return error_reply(400, f"This model's maximum context length is {WINDOW} tokens. However, your "
                                    f"messages resulted in {count} tokens. Please reduce the length of the messages.",
                               code="context_length_exceeded")  # fmt: skip
        with self.lock:
            self.requests.append((kind, count))
        if kind == "summary":
            text = "<summary>The user sent notes for several turns; each was acknowledged.</summary>"
        elif kind == "turn":
            turn = int(last.split("Turn ", 1)[1].split(":", 1)[0])
            text = answer(turn)
        else:
            text = "ok"
        return Stream(sse(text_chunks(text, model=body["model"], usage=usage(count, 20))))

    def refused(self) -> list[tuple[str, int]]:
        return [r for r in self.requests if r[0].startswith("refused")]

    def summaries(self) -> list[int]:
        """The indexes in `requests` of the summary requests Claude Code's compaction sent."""
        return [i for i, (kind, _) in enumerate(self.requests) if kind == "summary"]


@pytest.fixture
def session(upstream: Upstream, tmp_path: Path) -> Iterator[Callable[[bool], tuple[Launcher, SmallModel]]]:
    gateways: list[Gateway] = []

    def start(told: bool) -> tuple[Launcher, SmallModel]:
        model = SmallModel()
        upstream.reply = model
        facts = f"context_window: {WINDOW}, max_output: 8192, " if told else ""
        gateway, launcher = started(tmp_path, upstream.url, PROFILE, dict.fromkeys(("opus", "sonnet", "haiku"), MODEL),
                                    [f"{{name: {MODEL}, {facts}thinking: false, efforts: []}}"])
        gateways.append(gateway)
        return launcher, model

    yield start
    for gateway in gateways:
        gateway.stop()


def converse(launcher: Launcher, model: SmallModel) -> list[int]:
    """TURNS turns, each its own `claude -p` continuing the last; every one must answer
    as the model did, with no error in sight. The fake's token count of each turn."""
    seen = []
    for turn in range(1, TURNS + 1):
        result = launcher.print_mode(note(turn), *(["--continue"] if turn > 1 else []), "--output-format", "text")
        shown = result.stdout + result.stderr
        details = f"turn {turn}: exit {result.returncode}\n{shown[-3000:]}\nrequests: {model.requests}"
        assert result.returncode == 0, details
        assert result.stdout.strip() == answer(turn), details
        assert not [w for w in ERROR_WORDS if w.lower() in shown.lower()], details
        seen.append(next(count for kind, count in reversed(model.requests) if kind == "turn"))
    return seen


def test_told_the_window_claude_code_compacts_before_the_model_refuses(session):
    launcher, model = session(True)
    counts = converse(launcher, model)
    assert model.summaries(), f"Claude Code never compacted: {counts}"
    assert not model.refused(), f"the model refused {model.refused()}: Claude Code overran the window it was told"
    assert max(counts) <= WINDOW and counts[-1] < max(counts), counts  # it shrank, and grew again


def test_not_told_claude_code_compacts_when_the_model_refuses(session):
    """Claude Code assumes 200,000 tokens: the refusal comes, restated as "prompt is too
    long", and compaction follows; the user still sees every answer and no error."""
    launcher, model = session(False)
    counts = converse(launcher, model)
    assert model.refused(), f"the conversation never outgrew the window: {counts}"
    assert model.summaries(), f"Claude Code never compacted: {model.requests}"
