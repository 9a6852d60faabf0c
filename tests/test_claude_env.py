"""What the launcher tells Claude Code about a profile's models (claude_env): the main
model, the window and output limit it plans with, and each /model entry's name,
description and capabilities. Pure: routes.yaml text in, variables out."""

import os
from pathlib import Path

import yaml

from modelmux.cli import main as cli
from modelmux.config import loader, model_facts
from modelmux.cli.claude_env import (
    COMPACT, CONTEXT, CUSTOM, MAIN, NO_1M, OUTPUT, RECORD, VERIFIED_VERSION, capabilities, describe,
    model_environment,
)
from modelmux.config.model_facts import listed
from modelmux.config.types import ModelFacts

ROUTES = """
providers:
  anthropic: {protocol: anthropic, base_url: https://api.anthropic.com, auth: passthrough}
  claude-key: {protocol: anthropic, base_url: https://api.anthropic.com/, credentials: [{label: a, key: k}]}
  openai:
    protocol: openai-responses
    base_url: https://api.openai.com/v1
    auth: none
    models:
      - {name: gpt-5, context_window: 400000, max_output: 128000, thinking: true,
         efforts: [minimal, low, medium, high, xhigh]}
      - {name: gpt-5-nano, context_window: 400000, max_output: 128000, description: "GPT-5 nano, for quick jobs"}
  zai:
    protocol: anthropic
    base_url: https://api.z.ai/api/anthropic
    auth: none
    models:
      - {name: glm-4.6, context_window: 200000, max_output: 128000, thinking: true, efforts: []}
      - {name: glm-4.5-air, context_window: 128000, max_output: 8192, thinking: false, efforts: []}
      - glm-unknown
  gemini:
    protocol: gemini
    base_url: https://generativelanguage.googleapis.com/v1beta
    auth: none
    models:
      - {name: gemini-2.5-pro, context_window: 1048576, max_output: 65536}
      - {name: gemini-2.5-flash, context_window: 1048576, max_output: 65536}
routes:
  - {match: "claude-*", provider: anthropic}
  - {match: "keyed-*", provider: claude-key}
default: null
profiles:
  mixed:
    slots: {opus: gpt-5, sonnet: glm-4.6, haiku: glm-4.5-air}
  glm:
    slots: {opus: glm-4.6, haiku: glm-4.5-air}
    model: glm-4.5-air
  unknown:
    slots: {sonnet: glm-unknown}
  gemini:
    slots: {opus: gemini-2.5-pro, haiku: gemini-2.5-flash}
  claude:
    slots: {opus: claude-opus-4-1, sonnet: claude-sonnet-4-5, haiku: keyed-haiku}
  picked:
    slots: {opus: glm-4.6, sonnet: glm-4.6}
    model: gpt-5-nano
    subagent: glm-4.5-air
"""


def environment(profile: str, base_env: dict[str, str] | None = None,
                discovered=None, text: str = ROUTES) -> tuple[dict[str, str], list[str]]:
    cfg = loader.parse(yaml.safe_load(text), Path("/etc/modelmux/routes.yaml"), {})
    return model_environment(cfg, cfg.profiles[profile], base_env or {}, discovered)


def test_a_profile_of_other_models_gets_their_window_names_and_no_1m():
    values, unset = environment("mixed")
    assert values[MAIN] == "gpt-5"  # not Claude Code's own default, opus[1m]
    assert values[NO_1M] == "1"
    # One number for every model: the smallest, haiku's.
    assert (values[CONTEXT], values[COMPACT]) == ("128000", "128000")
    assert OUTPUT not in values  # gpt-5 takes more than Claude Code's own ask of 32000
    assert values["ANTHROPIC_DEFAULT_OPUS_MODEL_NAME"] == "gpt-5 via openai"
    assert values["ANTHROPIC_DEFAULT_OPUS_MODEL_DESCRIPTION"] == "400k context, 128k output, thinking"
    assert values["ANTHROPIC_DEFAULT_OPUS_MODEL_SUPPORTED_CAPABILITIES"] == "thinking,effort,xhigh_effort"
    assert values["ANTHROPIC_DEFAULT_SONNET_MODEL_SUPPORTED_CAPABILITIES"] == "thinking"
    assert values["ANTHROPIC_DEFAULT_HAIKU_MODEL_NAME"] == "glm-4.5-air via zai"
    assert values["ANTHROPIC_DEFAULT_HAIKU_MODEL_DESCRIPTION"] == "128k context, 8k output, no thinking"
    assert values["ANTHROPIC_DEFAULT_HAIKU_MODEL_SUPPORTED_CAPABILITIES"] == "none"
    assert values["ANTHROPIC_SMALL_FAST_MODEL"] == "glm-4.5-air"
    assert values[RECORD].split(",") == sorted(name for name in values if name != RECORD)
    assert unset == []


def test_the_main_models_smaller_output_limit_lowers_claude_codes_ask():
    values, _ = environment("glm")
    assert values[MAIN] == "glm-4.5-air"
    assert values[OUTPUT] == "8192"


def test_unknown_facts_set_nothing_but_what_avoids_the_false_1m_window():
    values, _ = environment("unknown")
    assert values[MAIN] == "glm-unknown"  # the first slot, without an opus slot
    assert values[NO_1M] == "1"
    assert not {CONTEXT, COMPACT, OUTPUT} & set(values)
    assert values["ANTHROPIC_DEFAULT_SONNET_MODEL_DESCRIPTION"] == "context window not known"
    assert "ANTHROPIC_DEFAULT_SONNET_MODEL_SUPPORTED_CAPABILITIES" not in values


def test_facts_a_model_list_reported_count_where_routes_yaml_is_silent():
    found = {"zai": {"glm-unknown": listed(context_window=64000, thinking=False, efforts=())}}
    values, _ = environment("unknown", discovered=found)
    assert (values[CONTEXT], values["ANTHROPIC_DEFAULT_SONNET_MODEL_SUPPORTED_CAPABILITIES"]) == ("64000", "none")


def test_models_with_a_1m_window_keep_claude_codes_1m():
    values, _ = environment("gemini")
    assert NO_1M not in values
    assert values[CONTEXT] == "1048576"
    assert values["ANTHROPIC_DEFAULT_OPUS_MODEL_DESCRIPTION"] == "1.05M context, 66k output"


def test_claude_models_at_anthropic_keep_what_claude_code_does_today():
    """Through the client's own login or a key at Anthropic's API: Claude Code knows the
    models by name; only the slots are set, as before model facts."""
    values, _ = environment("claude")
    assert set(values) == {"ANTHROPIC_DEFAULT_OPUS_MODEL", "ANTHROPIC_DEFAULT_SONNET_MODEL",
                           "ANTHROPIC_DEFAULT_HAIKU_MODEL", "ANTHROPIC_SMALL_FAST_MODEL", RECORD}


def test_a_profile_model_no_slot_holds_is_one_more_model_picker_entry():
    values, _ = environment("picked")
    assert values[MAIN] == values[CUSTOM] == "gpt-5-nano"
    assert values[CUSTOM + "_NAME"] == "gpt-5-nano via openai"
    assert values[CUSTOM + "_DESCRIPTION"] == "GPT-5 nano, for quick jobs"
    assert values["CLAUDE_CODE_SUBAGENT_MODEL"] == "glm-4.5-air"
    assert values[CONTEXT] == "128000"  # the subagent's model counts among the windows


def test_a_smaller_limit_of_the_users_own_wins_a_larger_one_does_not():
    values, _ = environment("mixed", {CONTEXT: "100000", COMPACT: "500000", OUTPUT: "16000"})
    assert (values[CONTEXT], values[COMPACT], values[OUTPUT]) == ("100000", "128000", "16000")
    values, _ = environment("glm", {OUTPUT: "64000"})
    assert values[OUTPUT] == "8192"


def test_what_a_previous_launch_set_is_replaced_or_unset_not_taken_for_the_users():
    """`eval "$(modelmux env glm)"`, then `modelmux run mixed`: glm's 8192 is not a limit of the user's."""
    first, _ = environment("glm")
    values, unset = environment("mixed", first)
    assert OUTPUT not in values and OUTPUT in unset
    assert "ANTHROPIC_DEFAULT_SONNET_MODEL" in values
    second, unset = environment("claude", values)
    assert {MAIN, NO_1M, CONTEXT, COMPACT, "ANTHROPIC_DEFAULT_OPUS_MODEL_NAME"} <= set(unset)
    assert "ANTHROPIC_DEFAULT_OPUS_MODEL" not in unset  # set again, to the claude profile's
    # A variable the user set themselves is never unset.
    assert environment("claude", {MAIN: "claude-opus-4-1"})[1] == []


def test_capabilities_only_when_thinking_and_efforts_are_both_known():
    assert capabilities(ModelFacts(thinking=True)) is None
    assert capabilities(ModelFacts(thinking=True, efforts=("low", "high", "max"))) == "thinking,effort,max_effort"
    assert capabilities(ModelFacts(thinking=False, efforts=())) == "none"
    assert describe(ModelFacts(context_window=32768, images=False)) == "33k context, no images"


def test_dev_sh_installs_the_verified_claude_code():
    dev_sh = (Path(__file__).resolve().parent.parent / "dev.sh").read_text()
    assert f"\nCLAUDE_CODE_VERSION={VERIFIED_VERSION}\n" in dev_sh


def test_modelmux_env_tells_what_the_model_lists_reported(tmp_path, monkeypatch, capsys):
    """The launcher reads the facts the gateway or `modelmux check` kept from the
    providers' model lists (in the state directory), for what routes.yaml does not say."""
    routes = tmp_path / "routes.yaml"
    routes.write_text(ROUTES)
    monkeypatch.setenv("MODELMUX_STATE_DIR", str(tmp_path / "state"))
    for name in [*os.environ]:
        if name.startswith(("ANTHROPIC_", "CLAUDE_CODE_", "MODELMUX_SET")):
            monkeypatch.delenv(name)
    path = model_facts.discovered_path(routes)
    path.parent.mkdir(parents=True)
    model_facts.save_discovered(path, {"zai": {"glm-unknown": listed(context_window=96000)}})
    assert cli.main(["env", "unknown", "--config", str(routes), "--shell", "bash"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "export CLAUDE_CODE_MAX_CONTEXT_TOKENS='96000'" in out, out
