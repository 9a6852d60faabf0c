"""Model facts: routes.yaml's syntax and its errors, the resolver that routes a name as
the gateway does and merges what routes.yaml says with what a model list reports, and
the cache file of discovered facts."""

import json
from pathlib import Path

import pytest
from test_config import parse, problems

from modelmux.config import loader, model_facts
from modelmux.config.model_facts import MODEL_LIST, ROUTES_YAML, Resolved, listed, resolve
from modelmux.config.types import ModelFacts
from modelmux.translate import effort

DEEPSEEK = """
  deepseek:
    protocol: openai-chat
    base_url: https://api.deepseek.com/v1
    auth: none
    models:
      - deepseek-chat
"""
ROUTES = """
providers:
  anthropic: {protocol: anthropic, base_url: https://api.anthropic.com, auth: passthrough}""" + DEEPSEEK + """\
      - name: deepseek-reasoner
        context_window: 128000
        max_output: 64000
        thinking: true
        efforts: [low, medium, high]
        images: true
        documents: false
        description: "DeepSeek's reasoner"
  openai:
    protocol: openai-responses
    base_url: https://api.openai.com/v1
    auth: none
    models:
      - name: gpt-5(high)
        context_window: 400000
routes:
  - {match: "claude-*haiku*", provider: deepseek, model: deepseek-chat}
  - {match: "gpt-*", provider: openai}
  - {match: "big", provider: deepseek, model: deepseek-reasoner, thinking: true}
aliases: {thinker: deepseek-reasoner}
default: null
"""


def test_a_model_is_a_name_or_a_mapping_of_its_name_and_facts():
    loaded = parse(ROUTES)
    deepseek = loaded.providers["deepseek"]
    assert deepseek.models == ("deepseek-chat", "deepseek-reasoner")
    assert deepseek.facts == {"deepseek-reasoner": ModelFacts(
        context_window=128000, max_output=64000, thinking=True, efforts=("low", "medium", "high"), images=True,
        documents=False, description="DeepSeek's reasoner", sources=dict.fromkeys(loader.FACTS, ROUTES_YAML),
    )}
    # A NAME(EFFORT) entry's facts are its upstream model's.
    assert loaded.providers["openai"].facts["gpt-5"].context_window == 400000
    assert loaded.providers["openai"].models == ("gpt-5(high)",)
    # Every name stays routable by name.
    assert [r.source for r in loaded.routes][-3:] == ["providers.deepseek.models"] * 2 + ["providers.openai.models"]


def test_the_schema_knows_every_effort_level():
    schema = loader.schema()["$defs"]["provider"]["properties"]["models"]["items"]
    assert tuple(schema["properties"]["efforts"]["items"]["enum"]) == effort.LEVELS


FACT = "providers:" + DEEPSEEK + "      - {name: deepseek-reasoner, FACT}\n"


@pytest.mark.parametrize(("fact", "problem"), [
    ("max_output: 0", "providers.deepseek.models[1].max_output: 0 is not valid"),
    ("context_window: -5", "providers.deepseek.models[1].context_window: -5 is not valid"),
    ("max_output: 8k", "providers.deepseek.models[1].max_output: expected a whole number, got '8k'"),
    ("thinking: yes please", "providers.deepseek.models[1].thinking: expected true or false, got 'yes please'"),
    ("efforts: [low, huge]", "providers.deepseek.models[1].efforts[1]: 'huge' is not one of: none, minimal, low, "
                             "medium, high, xhigh, max"),
    ("efforts: low", "providers.deepseek.models[1].efforts: expected a list, got 'low'"),
    ("images: 1", "providers.deepseek.models[1].images: expected true or false, got 1"),
    ("context: 5", "providers.deepseek.models[1]: unknown key 'context'; known keys: context_window, description, "
                   "documents, efforts, images, max_output, name, thinking"),
])  # fmt: skip
def test_a_wrong_fact_names_file_key_and_fix(fact: str, problem: str):
    found = problems(FACT.replace("FACT", fact))
    assert len(found) == 1 and found[0].startswith(problem), found


def test_a_mapping_needs_a_name():
    found = problems(FACT.replace("{name: deepseek-reasoner, FACT}", "{max_output: 8192}"))
    assert found == ["providers.deepseek.models[1]: missing required key 'name'"]


@pytest.mark.parametrize(("fact", "problem"), [
    ("context_window: 8000, max_output: 16000",
     "providers.deepseek.models[1].max_output: 16000 is more than its context_window 8000, which holds input and "
     "output together; lower max_output or raise context_window"),
    ("thinking: false, efforts: [high]",
     "providers.deepseek.models[1].efforts: a model with thinking: false takes no reasoning effort; remove efforts "
     "(or write []), or set thinking: true"),
])  # fmt: skip
def test_facts_that_contradict_each_other_are_refused(fact: str, problem: str):
    assert problems(FACT.replace("FACT", fact)) == [problem]


def test_facts_of_one_upstream_model_are_written_once():
    text = FACT.replace("- deepseek-chat", "- {name: deepseek-reasoner(high), max_output: 10}").replace("FACT",
                                                                                                        "max_output: 9")
    assert problems(text) == ["providers.deepseek.models[1]: the facts of 'deepseek-reasoner' are already written at "
                              "providers.deepseek.models[0]; write them once"]


def test_thinking_false_with_no_efforts_is_consistent():
    loaded = parse(FACT.replace("FACT", "thinking: false, efforts: []"))
    assert loaded.providers["deepseek"].facts["deepseek-reasoner"].efforts == ()


# -- resolve ------------------------------------------------------------------------------


def test_resolve_routes_as_the_gateway_does_and_reads_routes_yaml_facts():
    loaded = parse(ROUTES)
    reasoner = resolve(loaded, "deepseek-reasoner")
    assert (reasoner.provider, reasoner.model, reasoner.facts.max_output) == ("deepseek", "deepseek-reasoner", 64000)
    assert reasoner.facts.sources["max_output"] == ROUTES_YAML
    # An alias, and a route that renames the model.
    assert resolve(loaded, "thinker").facts == reasoner.facts
    haiku = resolve(loaded, "claude-haiku-4-5")
    assert (haiku.provider, haiku.model, haiku.facts) == ("deepseek", "deepseek-chat", ModelFacts())
    # NAME(EFFORT): the upstream model's facts; PROVIDER,MODEL names the provider itself.
    gpt5 = loaded.providers["openai"].facts["gpt-5"]
    assert resolve(loaded, "gpt-5(high)") == Resolved("gpt-5(high)", "openai", "gpt-5", gpt5)
    assert resolve(loaded, "deepseek,deepseek-reasoner").facts.context_window == 128000
    # A route with conditions does not take a name alone (`big` needs thinking).
    assert resolve(loaded, "big") == Resolved("big", None, "big", ModelFacts())


def test_resolve_for_a_profile_takes_its_routes_and_its_providers_only():
    route = "  - {match: fast, provider: deepseek, model: deepseek-reasoner, profile: p}\n"
    profiles = "profiles:\n  p: {slots: {opus: fast}, providers: [deepseek]}\n"
    text = ROUTES.replace("routes:\n", "routes:\n" + route) + profiles
    loaded = parse(text)
    profile = loaded.profiles["p"]
    assert resolve(loaded, "fast").provider is None  # a name alone, from no profile
    fast = resolve(loaded, "fast", profile=profile)
    assert (fast.provider, fast.model, fast.facts.max_output) == ("deepseek", "deepseek-reasoner", 64000)
    assert resolve(loaded, "gpt-5", profile=profile).provider is None  # openai is not the profile's


def test_routes_yaml_wins_then_the_model_list_then_nothing():
    loaded = parse(ROUTES)
    discovered = {"deepseek": {
        "deepseek-reasoner": listed(context_window=131072, max_output=32768, documents=True),
        "deepseek-chat": listed(context_window=65536),
    }}
    reasoner = resolve(loaded, "deepseek-reasoner", discovered).facts
    assert (reasoner.context_window, reasoner.max_output, reasoner.documents) == (128000, 64000, False)
    assert set(reasoner.sources.values()) == {ROUTES_YAML}
    chat = resolve(loaded, "deepseek-chat", discovered).facts
    assert chat == ModelFacts(context_window=65536, sources={"context_window": MODEL_LIST})
    assert chat.max_output is None and chat.thinking is None  # never a guess
    # What a list reports fills only the facts routes.yaml leaves out.
    text = ROUTES.replace("      - deepseek-chat\n", "      - {name: deepseek-chat, thinking: false}\n")
    mixed = resolve(parse(text), "deepseek-chat", discovered).facts
    assert (mixed.thinking, mixed.context_window) == (False, 65536)
    assert mixed.sources == {"thinking": ROUTES_YAML, "context_window": MODEL_LIST}
    # Another provider's list says nothing of this one's model.
    assert resolve(loaded, "deepseek-chat", {"openai": discovered["deepseek"]}).facts == ModelFacts()


# -- the cache file -----------------------------------------------------------------------


def test_discovered_facts_round_trip_through_the_state_directory(tmp_path: Path):
    path = model_facts.discovered_path(tmp_path / "routes.yaml", {"MODELMUX_STATE_DIR": str(tmp_path / "state")})
    assert path.parent == tmp_path / "state" and path.name.startswith("routes-") and path.suffix == ".json"
    assert model_facts.load_discovered(path) == {}
    discovered = {"gem": {"gemini-2.5-flash": listed(context_window=1048576, max_output=65536, thinking=True,
                                                     efforts=("low", "high"), images=None),
                          "empty": listed()}}
    model_facts.save_discovered(path, discovered)
    loaded = model_facts.load_discovered(path)
    assert loaded == {"gem": {"gemini-2.5-flash": discovered["gem"]["gemini-2.5-flash"]}}
    assert loaded["gem"]["gemini-2.5-flash"].sources["max_output"] == MODEL_LIST
    assert json.loads(path.read_text())["providers"]["gem"]["gemini-2.5-flash"]["efforts"] == ["low", "high"]


@pytest.mark.parametrize("text", [
    "not json", "[]", '{"version": 99, "providers": {}}', '{"version": 1, "providers": []}',
])
def test_a_missing_or_corrupt_cache_is_no_facts(tmp_path: Path, text: str):
    path = tmp_path / "facts.json"
    path.write_text(text)
    assert model_facts.load_discovered(path) == {}


def test_a_cached_value_of_the_wrong_kind_is_left_out(tmp_path: Path):
    path = tmp_path / "facts.json"
    path.write_text(json.dumps({"version": 1, "providers": {"p": {
        "m": {"context_window": "big", "max_output": 0, "thinking": "yes", "efforts": ["low", "huge"], "images": True},
    }, "q": []}}))
    assert model_facts.load_discovered(path) == {"p": {"m": listed(images=True)}}


def test_what_a_list_reports_replaces_what_was_known_of_its_provider_only():
    previous = {"a": {"m": listed(max_output=1)}, "b": {"n": listed(max_output=2)}, "gone": {"x": listed(images=True)}}
    found = {"a": {"m2": listed(max_output=3)}, "b": {}}
    # a: replaced; b: its list answered with nothing; c: not asked, nothing known; gone: not in routes.yaml.
    assert model_facts.updated(previous, found, ["a", "b", "c"]) == {"a": {"m2": listed(max_output=3)}}
    assert model_facts.updated(previous, {}, ["a", "b"]) == {"a": previous["a"], "b": previous["b"]}
