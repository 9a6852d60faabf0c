"""routes.yaml loading: typed objects, and errors that name the file, the key and the fix."""

from pathlib import Path

import pytest
import yaml

from modelmux.config import loader
from modelmux.config.loader import ConfigError
from modelmux.config.types import Credential
from modelmux.replay import config_text

PATH = Path("/etc/modelmux/routes.yaml")
REPO = Path(__file__).resolve().parent.parent


def parse(text: str, environ: dict[str, str] | None = None) -> loader.Config:
    return loader.parse(yaml.safe_load(text), PATH, environ or {})


def problems(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse(text, environ)
    assert str(raised.value).splitlines() == [f"{PATH}: {p}" for p in raised.value.problems]
    return raised.value.problems


VENDOR = """
providers:
  anthropic: {protocol: anthropic, base_url: https://api.anthropic.com, auth: passthrough}
  zai:
    protocol: anthropic
    base_url: https://api.z.ai/api/anthropic/
    auth: "Authorization: Bearer {key}"
    credentials: [{label: main, key: "${ZAI_KEY}"}, {label: spare, key: "sk-${SPARE}-x"}]
    headers: {x-team: "${TEAM}"}
    models: [glm-4.6]
    response_timeout: 30
routes:
  - {match: "claude-*haiku*", provider: zai, model: glm-4.5-air}
  - {match: {regex: "^kimi-"}, provider: zai, response_model: upstream}
aliases: {fast: glm-4.6}
profiles:
  glm: {slots: {opus: glm-4.6, haiku: claude-haiku-4-5}, model: glm-4.6, providers: [zai], port: 7999}
default: {provider: anthropic}
"""
ENV = {"ZAI_KEY": "sk-zai-secret-1234", "SPARE": "two", "TEAM": "blue"}


def test_bundled_routes_yaml_loads():
    loaded = loader.load(REPO / "routes.yaml")
    assert loaded.providers["anthropic"].passthrough
    assert loaded.routes[-1].source == "default"
    assert loaded.server.host == "127.0.0.1"


def test_reasoning_effort_defaults_to_the_models_family_on_openai_chat_and_a_written_switch_wins():
    """openai-chat: unset is None, which to_chat reads as "as the model's family takes it"
    (effort.reasons); openai-responses sends efforts unless told not to."""
    loaded = parse("""
providers:
  chat: {protocol: openai-chat, base_url: "https://a.example/v1", auth: none}
  chat_on: {protocol: openai-chat, base_url: "https://a.example/v1", auth: none, reasoning_effort: true}
  chat_off: {protocol: openai-chat, base_url: "https://a.example/v1", auth: none, reasoning_effort: false}
  responses: {protocol: openai-responses, base_url: "https://a.example/v1", auth: none}
  responses_off: {protocol: openai-responses, base_url: "https://a.example/v1", auth: none, reasoning_effort: false}
""")
    assert {name: p.shape.reasoning_effort for name, p in loaded.providers.items()} == {
        "chat": None, "chat_on": True, "chat_off": False, "responses": True, "responses_off": False}


def test_typed_objects_with_expanded_variables():
    loaded = parse(VENDOR, ENV)
    zai = loaded.providers["zai"]
    assert zai.base_url == "https://api.z.ai/api/anthropic"
    assert (zai.auth.header, zai.auth.template) == ("Authorization", "Bearer {key}")
    assert [(c.label, c.key) for c in zai.credentials] == [("main", "sk-zai-secret-1234"), ("spare", "sk-two-x")]
    assert zai.auth.value(zai.credentials[0]) == "Bearer sk-zai-secret-1234"
    assert dict(zai.headers) == {"x-team": "blue"}
    assert (zai.connect_timeout, zai.response_timeout) == (10.0, 30.0)
    assert [r.source for r in loaded.routes] == ["routes[0]", "routes[1]", "providers.zai.models", "default"]
    assert [r.pattern.kind for r in loaded.routes] == ["glob", "regex", "exact", "any"]
    profile = loaded.profiles["glm"]
    assert (profile.providers, profile.port, profile.model) == (frozenset({"zai"}), 7999, "glm-4.6")


def test_the_summary_counts_routes_as_written():
    """What /healthz and `modelmux status` show: the two entries under routes:, not the
    four routes they, the provider's model list and the default make."""
    loaded = parse(VENDOR, ENV)
    assert len(loaded.routes) == 4
    assert loaded.summary() == {
        "path": str(PATH), "providers": ["anthropic", "zai"], "routes": 2, "provider_models": 1,
        "default": "anthropic", "aliases": 1, "profiles": ["glm"],
    }


def test_secrets_stay_out_of_reprs():
    loaded = parse(VENDOR, ENV)
    assert "sk-zai-secret-1234" not in repr(loaded)


def test_secrets_written_in_headers_and_query_are_the_providers_too():
    """A `${VAR}` in a header or query value, and the whole value of a header named like a
    credential, are secrets (never shown, scrubbed from echoes); other values are not."""
    text = """
providers:
  azure:
    protocol: openai-chat
    base_url: https://x.openai.azure.com/openai
    auth: none
    headers: {x-team: "${TEAM}", x-org: "Org ${ORG_TOKEN}", api-key: literal-azure-key-9999,
              Authorization: "Bearer literal-bearer-8888", HTTP-Referer: "https://my.app.example"}
    query: {api-version: "2024-10-21", sig: "${SIGNATURE}"}
"""
    azure = parse(text, {**ENV, "ORG_TOKEN": "org-token-from-env-7777", "SIGNATURE": "sig-from-env-6666"}).providers["azure"]
    assert [(c.label, c.key) for c in azure.written_secrets] == [
        ("azure.headers.x-team", "blue"), ("azure.headers.x-org", "org-token-from-env-7777"),
        ("azure.headers.api-key", "literal-azure-key-9999"), ("azure.headers.Authorization", "literal-bearer-8888"),
        ("azure.query.sig", "sig-from-env-6666")]
    assert parse(VENDOR, ENV).providers["zai"].secrets == (*parse(VENDOR, ENV).providers["zai"].credentials,
                                                           Credential("zai.headers.x-team", "blue"))
    assert "org-token-from-env-7777" not in repr(azure)


def test_unset_variable_names_variable_and_credential():
    assert problems(VENDOR, {"SPARE": "x", "TEAM": "t"}) == [
        "providers.zai.credentials[0].key (credential 'main') uses ${ZAI_KEY}, but environment variable "
        "ZAI_KEY is not set; export ZAI_KEY=... before starting modelmux, or remove it"
    ]


def test_unknown_provider_lists_known_ones():
    text = VENDOR.replace("provider: zai, model: glm-4.5-air", "provider: kimi")
    assert problems(text, ENV) == ["routes[0].provider: 'kimi' is not a provider; known: anthropic, zai"]


def test_schema_problems_are_phrased_for_people():
    text = """
providers:
  a: {protocol: anthropic, base_url: "ftp://x", auth: passthrough, extra: 1}
  b: {protocol: grpc, base_url: "https://b"}
routes:
  - {match: 3, provider: a}
  - {match: x, providr: a}
profiles: {p: {port: 70000}}
"""
    assert problems(text) == [
        "profiles.p.port: 70000 is not valid; write a port number from 1 to 65535",
        "providers.a: unknown key 'extra'; known keys: affinity, auth, base_url, connect_timeout, cooldown_scope, "
        "credentials, documents, drop_fields, endpoint, headers, images, max_tokens_field, max_tokens_limit, "
        "max_wait, models, protocol, query, reasoning_effort, reasoning_history, reasoning_summary, response_timeout, strategy",
        "providers.a.base_url: its value is not valid; write an http(s) URL without query string, "
        "e.g. https://api.example.com/anthropic",
        "providers.b.protocol: 'grpc' is not one of: anthropic, openai-chat, openai-responses, gemini",
        "routes[0].match: 3 is not valid; write a model name, a glob such as 'claude-*haiku*', or one of "
        "{exact: NAME}, {glob: PATTERN}, {regex: EXPR}",
        "routes[1]: unknown key 'providr'; known keys: fallback, header, intercept, match, model, profile, prompt_tokens_above, provider, response_model, "
            "thinking, tool",
        "routes[1]: missing required key 'provider'",
    ]


@pytest.mark.parametrize(
    "provider, problem",
    [
        ("{protocol: anthropic, base_url: 'https://x', auth: 'Bearer {key}', credentials: [{label: a, key: k}]}",
         "providers.p.auth: is not understood (its value is not shown: it may hold a key); write 'passthrough', "
         "'none' or 'Header-Name: value' containing {key}, e.g. 'x-api-key: {key}' or 'Authorization: Bearer {key}', "
         "and put the key itself under credentials"),
        ("{protocol: anthropic, base_url: 'https://x'}",
         "providers.p.credentials: none given; add e.g. credentials: [{label: main, key: '${P_API_KEY}'}], "
         "or set auth: passthrough to send the client's own Anthropic token, or auth: none for a local server "
         "that takes no key (Ollama, vLLM, LM Studio, llama.cpp)"),
        ("{protocol: openai-chat, base_url: 'http://127.0.0.1:11434/v1'}",
         "providers.p.credentials: none given; add e.g. credentials: [{label: main, key: '${P_API_KEY}'}], "
         "or auth: none for a local server that takes no key (Ollama, vLLM, LM Studio, llama.cpp)"),
        ("{protocol: openai-chat, base_url: 'https://x', auth: passthrough}",
         "providers.p.auth: passthrough forwards the client's own Anthropic token, so it needs protocol: "
         "anthropic; write e.g. 'Authorization: Bearer {key}' with credentials instead, or auth: none for a "
         "local server that takes no key"),
        ("{protocol: openai-chat, base_url: 'http://127.0.0.1:8000/v1', auth: none, credentials: [{label: a, key: k}]}",
         "providers.p.credentials: a provider with auth: none sends no credential; remove the credentials, "
         "or set auth to a header such as 'Authorization: Bearer {key}'"),
        ("{protocol: gemini, base_url: 'http://127.0.0.1:8000', auth: none, credentials: [{label: a, key: k}]}",
         "providers.p.credentials: a provider with auth: none sends no credential; remove the credentials, "
         "or set auth to a header such as 'x-goog-api-key: {key}'"),
        ("{protocol: anthropic, base_url: 'https://x', credentials: [{label: a, key: k}, {label: a, key: j}]}",
         "providers.p.credentials[1].label: 'a' is used twice; labels must be unique"),
    ],
)
def test_provider_problems(provider: str, problem: str):
    assert problems(f"providers:\n  p: {provider}\n") == [problem]


POOLED = """
providers:
  zai:
    protocol: anthropic
    base_url: https://z
    strategy: fill-first
    affinity: true
    cooldown_scope: model
    max_wait: 5
    credentials:
      - {label: sub, key: k1, max_concurrent: 1}
      - {label: paid, key: k2, priority: 2}
  kimi:
    protocol: anthropic
    base_url: https://k
    credentials: [{label: a, key: k3, weight: 3}, {label: b, key: k4}]
"""


def test_pool_settings_are_typed_with_defaults():
    loaded = parse(POOLED)
    zai, kimi = loaded.providers["zai"], loaded.providers["kimi"]
    assert (zai.strategy, zai.affinity, zai.cooldown_scope, zai.max_wait) == ("fill-first", True, "model", 5.0)
    assert (kimi.strategy, kimi.affinity, kimi.cooldown_scope, kimi.max_wait) == ("round-robin", False, "credential", 30.0)
    assert [(c.label, c.priority, c.weight, c.max_concurrent) for c in zai.credentials + kimi.credentials] == [
        ("sub", 1, 1, 1), ("paid", 2, 1, None), ("a", 1, 3, None), ("b", 1, 1, None),
    ]


@pytest.mark.parametrize(
    "change, problem",
    [
        (("strategy: fill-first", "strategy: random"),
         "providers.zai.strategy: 'random' is not one of: round-robin, fill-first, most-quota"),
        (("priority: 2", "priority: 0"),
         "providers.zai.credentials[1].priority: 0 is less than the minimum of 1"),
        (("max_concurrent: 1", "max_concurrent: two"),
         "providers.zai.credentials[0].max_concurrent: expected a whole number, got 'two'"),
        (("cooldown_scope: model", "cooldown_scope: account"),
         "providers.zai.cooldown_scope: 'account' is not one of: credential, model"),
        (("{label: a, key: k3, weight: 3}", "{label: a, key: k3, weight: heavy}"),
         "providers.kimi.credentials[0].weight: expected a whole number, got 'heavy'"),
        (("max_concurrent: 1}", "max_concurrent: 1, weight: 2}"),
         "providers.zai.credentials[0].weight: weights only apply to strategy round-robin; "
         "remove it, or use priority to order credentials under fill-first"),
    ],
)
def test_pool_setting_problems(change: tuple[str, str], problem: str):
    assert problems(POOLED.replace(*change)) == [problem]


def test_pool_settings_on_a_passthrough_provider_are_refused():
    text = "providers:\n  a: {protocol: anthropic, base_url: 'https://a', auth: passthrough, affinity: true, max_wait: 1}\n"
    assert problems(text) == [
        "providers.a: affinity, max_wait only apply to providers with credentials; "
        "a passthrough provider sends the client's own token"
    ]


KEYLESS = """
providers:
  ollama: {protocol: openai-chat, base_url: "http://127.0.0.1:11434/v1", auth: none, models: [qwen3-coder]}
  vllm: {protocol: openai-responses, base_url: "http://127.0.0.1:8000/v1", auth: " none ", credentials: []}
  llamacpp: {protocol: anthropic, base_url: "http://127.0.0.1:8080", auth: none}
  gemma: {protocol: gemini, base_url: "http://127.0.0.1:9000/v1beta", auth: none, credentials: null}
"""


def test_auth_none_is_a_provider_without_any_credential():
    loaded = parse(KEYLESS)
    assert [(p.name, p.keyless, p.passthrough, p.auth, p.credentials) for p in loaded.providers.values()] == [
        (name, True, False, None, ()) for name in ("ollama", "vllm", "llamacpp", "gemma")
    ]
    assert [r.provider for r in loaded.routes] == ["ollama"]
    assert not parse(VENDOR, ENV).providers["anthropic"].keyless


def test_pool_settings_on_a_keyless_provider_are_refused():
    text = KEYLESS.replace("models: [qwen3-coder]", "strategy: fill-first, cooldown_scope: model")
    assert problems(text) == [
        "providers.ollama: cooldown_scope, strategy only apply to providers with credentials; "
        "a provider with auth: none sends no credential; remove them"
    ]
    with_weights = KEYLESS.replace("credentials: []", "credentials: [{label: a, key: k, weight: 2, max_concurrent: 1}]")
    assert problems(with_weights) == [
        "providers.vllm.credentials: a provider with auth: none sends no credential; remove the credentials, "
        "or set auth to a header such as 'Authorization: Bearer {key}'"
    ]


def test_cross_reference_problems():
    text = """
server: {port: 7000}
providers:
  a: {protocol: anthropic, base_url: "https://a", auth: passthrough}
routes:
  - {match: {regex: "("}, provider: a}
aliases: {x: y, y: x}
profiles:
  p: {providers: [a, nope], port: 7000}
"""
    assert problems(text) == [
        "routes[0].match: '(' is not a valid regular expression (missing ), unterminated subpattern at position 0)",
        "aliases.x: the aliases form a loop (x → y → x); point one at a model name",
        "aliases.y: the aliases form a loop (y → x → y); point one at a model name",
        "profiles.p.providers[1]: 'nope' is not a provider; known: a",
        "profiles.p.port: 7000 is already used by server.port; pick another port",
    ]


def test_file_level_errors(tmp_path: Path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=r"nope.yaml: cannot read the file \(No such file or directory\); pass --config PATH"):
        loader.load(missing)
    broken = tmp_path / "broken.yaml"
    broken.write_text("providers:\n  a: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: line 3, column 1: not valid YAML"):
        loader.load(broken)
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    with pytest.raises(ConfigError, match="the file is empty; start from the bundled routes.yaml"):
        loader.load(empty)


def test_redirected_puts_every_provider_on_one_origin_keeping_paths():
    loaded = parse(VENDOR, {"ZAI_KEY": "k1", "SPARE": "s", "TEAM": "t"})
    moved = config_text.redirected(loaded, "http://127.0.0.1:4000")
    assert {name: p.base_url for name, p in moved.providers.items()} == {
        "anthropic": "http://127.0.0.1:4000", "zai": "http://127.0.0.1:4000/api/anthropic",
    }  # fmt: skip
    assert moved.providers["zai"].credentials == loaded.providers["zai"].credentials
    assert moved.routes == loaded.routes


@pytest.mark.parametrize("text", ["127.0.0.1:4000", "ftp://h", "http://h/path", "http://h:99999", "http://", "http://h?x=1"])
def test_an_origin_is_scheme_host_and_port_only(text: str):
    with pytest.raises(ValueError, match="origin|port"):
        config_text.origin(text)


def test_origin_accepts_and_tidies_what_it_should():
    assert config_text.origin("http://127.0.0.1:4000/") == "http://127.0.0.1:4000"
    assert config_text.origin("https://[::1]:8443") == "https://[::1]:8443"


def test_loading_keeps_the_files_text_and_names_its_variables(tmp_path: Path):
    path = tmp_path / "routes.yaml"
    path.write_text(VENDOR)
    loaded = loader.load(path, {"ZAI_KEY": "k1", "SPARE": "s", "TEAM": "t"})
    assert loaded.source == VENDOR
    assert loader.variables(loaded.source) == ["ZAI_KEY", "SPARE", "TEAM"]


def test_without_ports_leaves_profiles_on_the_main_listener():
    text = "server: {port: 7878}\nprofiles:\n  glm: {model: glm-4.6, port: 7879}\n  plain: {model: x}\n"
    assert yaml.safe_load(config_text.without_ports(text)) == {
        "server": {"port": 7878}, "profiles": {"glm": {"model": "glm-4.6"}, "plain": {"model": "x"}},
    }  # fmt: skip
    with pytest.raises(ValueError, match="not valid YAML"):
        config_text.without_ports("providers: [oops")


# Values typed into routes.yaml directly, where a `${VAR}` belongs: every error about
# them names the key and the problem, never the value (it reaches the log and /healthz).
LITERAL = "sk-literal-secret-typed-in-7777"
NUMBER = 98765432109876543


@pytest.mark.parametrize("text", [
    f"providers:\n  p: {{protocol: anthropic, base_url: 'https://x', auth: 'Authorization: Bearer {LITERAL}', "
    "credentials: [{label: a, key: k}]}\n",
    f"providers:\n  p: {{protocol: anthropic, base_url: 'https://x', credentials: [{{label: a, key: {NUMBER}}}]}}\n",
    f"providers:\n  p: {{protocol: anthropic, base_url: 'https://x', credentials: ['{LITERAL}']}}\n",
    f"providers:\n  p: {{protocol: gemini, base_url: 'https://x/v1beta?key={LITERAL}', credentials: [{{label: a, key: k}}]}}\n",
    f"providers:\n  p: {{protocol: anthropic, base_url: 'https://x', auth: passthrough, headers: {{x-key: {NUMBER}}}}}\n",
    f"providers:\n  p: {{protocol: openai-chat, base_url: 'https://x', auth: none, query: {{key: {NUMBER}}}}}\n",
    f"providers:\n  p: {{protocol: openai-chat, base_url: 'https://x', auth: none, query: {{key: ['{LITERAL}']}}}}\n",
    f"server: {{api_key: {NUMBER}}}\nproviders:\n  p: {{protocol: anthropic, base_url: 'https://x', auth: passthrough}}\n",
    f"server: {{api_key: ['{LITERAL}']}}\nproviders:\n  p: {{protocol: anthropic, base_url: 'https://x', auth: passthrough}}\n",
    f"state: {{backend: redis, url: 'https://:{LITERAL}@redis'}}\nproviders:\n  p: {{protocol: anthropic, base_url: 'https://x', auth: passthrough}}\n",
    f"state: {{backend: redis, url: {NUMBER}}}\nproviders:\n  p: {{protocol: anthropic, base_url: 'https://x', auth: passthrough}}\n",
], ids=["auth", "key-number", "credential-as-string", "base-url-query", "header-number", "query-number", "query-list",
        "api-key-number", "api-key-list", "redis-url", "redis-url-number"])
def test_errors_never_quote_a_value_that_may_be_a_secret(text: str):
    found = problems(text)
    assert found and all(LITERAL not in p and str(NUMBER) not in p for p in found), found


def test_an_unquoted_value_is_named_by_its_key_and_kind():
    assert problems(f"server: {{api_key: {NUMBER}}}\nproviders:\n  p: {{protocol: anthropic, base_url: 'https://x', "
                    "auth: passthrough}\n") == ["server.api_key: expected a string, got a whole number"]
    assert problems(f"providers:\n  p: {{protocol: anthropic, base_url: 'https://x?key={LITERAL}', auth: passthrough}}\n") == [
        "providers.p.base_url: its value is not valid; write an http(s) URL without query string, "
        "e.g. https://api.example.com/anthropic"]


def test_invalid_yaml_names_the_line_not_its_text(tmp_path: Path):
    path = tmp_path / "routes.yaml"
    path.write_text(f"providers:\n  p: {{protocol: anthropic, base_url: 'https://x', credentials: [{{key: \"{LITERAL}\n")
    with pytest.raises(ConfigError) as raised:
        loader.load(path)
    assert LITERAL not in str(raised.value) and "not valid YAML" in str(raised.value)


def test_profile_takes_a_fable_slot_and_a_subagent_model(tmp_path: Path) -> None:
    """Claude Code 2.1.197 has a fourth family, fable, beside opus/sonnet/haiku, and one
    model for every subagent; both are names the profile hands Claude Code."""
    path = tmp_path / "routes.yaml"
    path.write_text("""
providers:
  zai: {protocol: anthropic, base_url: 'https://api.z.ai/api/anthropic', credentials: [{label: a, key: k}],
        models: [glm-4.6, glm-4.5-air]}
profiles:
  glm:
    slots: {opus: glm-4.6, fable: glm-4.6, haiku: glm-4.5-air}
    subagent: glm-4.5-air
""")
    profile = loader.load(path, environ={}).profiles["glm"]
    assert profile.slots == {"opus": "glm-4.6", "fable": "glm-4.6", "haiku": "glm-4.5-air"}
    assert profile.subagent == "glm-4.5-air"
    assert profile.names() == [("slots.opus", "glm-4.6"), ("slots.fable", "glm-4.6"), ("slots.haiku", "glm-4.5-air"),
                               ("subagent", "glm-4.5-air")]


PASSTHROUGH = "providers:\n  p: {protocol: anthropic, base_url: 'https://x', auth: passthrough}\n"


def test_the_state_is_the_file_unless_redis_is_named():
    assert parse(PASSTHROUGH).state == loader.State()
    assert not parse(PASSTHROUGH).state.shared
    state = parse('state: {backend: redis, url: "${MODELMUX_REDIS_URL}", prefix: team-a, lease_seconds: 5}\n'
                  + PASSTHROUGH, {"MODELMUX_REDIS_URL": "redis://:pw@10.0.0.5:6379/2"}).state
    assert state == loader.State("redis", "redis://:pw@10.0.0.5:6379/2", "team-a", 5.0) and state.shared
    assert "pw" not in repr(state)
    for url in ("rediss://cache.internal:6380/0", "unix:///run/redis/redis.sock", "redis://localhost"):
        assert parse(f"state: {{backend: redis, url: '{url}'}}\n" + PASSTHROUGH).state.url == url


@pytest.mark.parametrize(("state", "problem"), [
    ("{backend: redis}", "state.url: backend: redis needs the server's address; add url: \"${MODELMUX_REDIS_URL}\" "
     "and export MODELMUX_REDIS_URL=redis://HOST:6379/0 (redis://:PASSWORD@HOST:6379/0 with a password), or set "
     "backend: file"),
    ("{backend: redis, url: '${REDIS}'}", "state.url uses ${REDIS}, but environment variable REDIS is not set; "
     "export REDIS=... before starting modelmux, or remove it"),
    ("{backend: redis, url: 'http://cache:6379'}", "state.url: is not a Redis URL (its value is not shown: it may "
     "hold a password); write redis://HOST:6379/0, rediss://HOST:6380/0 for TLS or unix:///PATH/redis.sock"),
    ("{backend: file, url: 'redis://x', prefix: a}", "state: prefix, url only apply to backend: redis; remove them, "
     "or set backend: redis"),
    ("{backend: memcached}", "state.backend: 'memcached' is not one of: file, redis"),
    ("{url: 'redis://x'}", "state: missing required key 'backend'"),
    ("{backend: redis, url: 'redis://x', prefix: 'a:b'}", "state.prefix: 'a:b' is not valid; write letters, "
     "digits, '_', '.' or '-', starting with a letter or digit, e.g. modelmux-team"),
    ("{backend: redis, url: 'redis://x', lease_seconds: 0.5}", "state.lease_seconds: 0.5 is not valid; write "
     "seconds from 1 to 3600, e.g. 15"),
    ("{backend: redis, url: 'redis://x', tls: true}", "state: unknown key 'tls'; known keys: backend, "
     "lease_seconds, prefix, url"),
])  # fmt: skip
def test_state_problems_name_the_key_and_the_fix(state: str, problem: str):
    assert problems(f"state: {state}\n" + PASSTHROUGH) == [problem]
