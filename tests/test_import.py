"""modelmux import: each tool's login file as a Token, copies that are 0600 and leave the
original alone, the listing, and token files that then load in routes.yaml."""

from __future__ import annotations

import base64
import io
import json
import stat
from pathlib import Path
from typing import Any

import pytest

from modelmux.cli import import_logins
from modelmux.cli import main as cli
from modelmux.config import loader
from modelmux.config.loader import ConfigError
from modelmux.oauth import tokens
from modelmux.oauth.imports import CLAUDE_CODE, CLIPROXYAPI, CODEX_CLI, Found, discover, import_to, read_source
from modelmux.oauth.tokens import Token

NOW = 1767000000.0  # 2025-12-29 09:20 UTC


def jwt(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def openai_id_token(email: str, account: str) -> str:
    return jwt({"email": email, "https://api.openai.com/auth": {"chatgpt_account_id": account, "chatgpt_plan_type": "plus"}})


CODEX_ACCESS = jwt({"exp": 1770091506, "https://api.openai.com/auth": {"chatgpt_account_id": "acc-b"}})  # 2026-02-03 04:05:06
CPA_CODEX_ID = openai_id_token("d@example.com", "acc-d")

CLAUDE_CODE_FILE = {
    "claudeAiOauth": {
        "accessToken": "sk-ant-oat01-FIXTURE-claude-code-access",
        "refreshToken": "sk-ant-ort01-FIXTURE-claude-code-refresh",
        "expiresAt": 1767323045500,  # ms: 2026-01-02 03:04:05.5 UTC
        "scopes": ["user:inference", "user:profile", "user:sessions:claude_code"],
        "subscriptionType": "max",
        "rateLimitTier": "default_claude_max_20x",
    }
}
CLAUDE_JSON = {"numStartups": 12, "oauthAccount": {"accountUuid": "u-1", "emailAddress": "a@example.com"}}
CODEX_AUTH = {
    "OPENAI_API_KEY": None,
    "tokens": {
        "id_token": openai_id_token("b@example.com", "acc-b"),
        "access_token": CODEX_ACCESS,
        "refresh_token": "rt-FIXTURE-codex-cli-refresh",
        "account_id": "acc-b",
    },
    "last_refresh": "2025-12-28T10:11:12.345678Z",
}
CPA_FILES = {
    "claude-c@example.com.json": {
        "type": "claude", "id_token": "", "access_token": "sk-ant-oat01-FIXTURE-cpa-claude-access",
        "refresh_token": "sk-ant-ort01-FIXTURE-cpa-claude-refresh", "email": "c@example.com",
        "expired": "2026-03-04T13:06:07+08:00", "last_refresh": "2026-03-04T05:06:07+08:00",
    },
    "codex-d@example.com-plus.json": {
        "type": "codex", "id_token": CPA_CODEX_ID, "access_token": "FIXTURE-cpa-codex-access",
        "refresh_token": "rt-FIXTURE-cpa-codex-refresh", "account_id": "acc-d", "email": "d@example.com",
        "expired": "2026-04-05T06:07:08Z", "last_refresh": "2026-03-26T06:07:08Z", "plan_type": "plus",
    },
    "gemini-e@example.com-proj-1.json": {
        "type": "gemini", "project_id": "proj-1", "email": "e@example.com", "auto": False, "checked": True,
        "token": {
            "access_token": "ya29.FIXTURE-cpa-gemini-access", "token_type": "Bearer",
            "refresh_token": "1//FIXTURE-cpa-gemini-refresh", "expiry": "2026-03-03T22:06:07.250000000-07:00",
            "token_uri": "https://oauth2.googleapis.com/token", "client_id": "681255809395-x.apps.googleusercontent.com",
            "scopes": ["https://www.googleapis.com/auth/cloud-platform"], "universe_domain": "googleapis.com",
        },
    },
    "antigravity-f_example_com.json": {
        "type": "antigravity", "access_token": "ya29.FIXTURE-cpa-antigravity-access",
        "refresh_token": "1//FIXTURE-cpa-antigravity-refresh", "expires_in": 3599, "timestamp": 1748732401000,
        "expired": "2025-06-01T00:00:00Z", "email": "f@example.com", "project_id": "proj-f",
    },
    "qwen-g@example.com.json": {"type": "qwen", "access_token": "FIXTURE-cpa-qwen-access", "email": "g@example.com"},
}
SECRETS = [
    CLAUDE_CODE_FILE["claudeAiOauth"]["accessToken"], CLAUDE_CODE_FILE["claudeAiOauth"]["refreshToken"],
    CODEX_ACCESS, CODEX_AUTH["tokens"]["refresh_token"], CODEX_AUTH["tokens"]["id_token"], CPA_CODEX_ID,
    *(value for file in CPA_FILES.values() for key, value in file.items() if key in ("access_token", "refresh_token")),
    CPA_FILES["gemini-e@example.com-proj-1.json"]["token"]["access_token"],
    CPA_FILES["gemini-e@example.com-proj-1.json"]["token"]["refresh_token"],
]


def write_json(path: Path, data: Any, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
    path.chmod(mode)
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home with every supported login in its default place, plus two files import cannot use."""
    home = tmp_path / "home"
    write_json(home / ".claude" / ".credentials.json", CLAUDE_CODE_FILE)
    write_json(home / ".claude.json", CLAUDE_JSON, 0o644)
    write_json(home / ".codex" / "auth.json", CODEX_AUTH)
    for name, data in CPA_FILES.items():
        write_json(home / ".cli-proxy-api" / name, data)
    (home / ".cli-proxy-api" / "broken.json").write_text('{"type": "claude", ')
    (home / ".cli-proxy-api" / "config.yaml").write_text("port: 8317\n")
    return home


def run(home: Path, *args: str, environ: dict[str, str] | None = None) -> tuple[int, str]:
    out = io.StringIO()
    paths = [Path(a) for a in args if not a.startswith("--")]
    status = import_logins.run(paths, home / "tokens", "--dry-run" in args, "--json" in args, home,
                               environ or {}, NOW, out)
    return status, out.getvalue()


def snapshot(directory: Path) -> dict[str, tuple[bytes, int, int]]:
    return {str(p): (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_mode) for p in sorted(directory.rglob("*"))
            if p.is_file()}


# --- Each format as a Token ------------------------------------------------------------------


def test_claude_code_credentials_with_the_email_from_claude_json(home: Path) -> None:
    path = home / ".claude" / ".credentials.json"
    found = read_source(path)
    assert (found.origin, found.reason, found.label, found.protocol) == (CLAUDE_CODE, None, "claude-a_example.com", "anthropic")
    assert found.token == Token(
        kind="claude", access_token="sk-ant-oat01-FIXTURE-claude-code-access",
        refresh_token="sk-ant-ort01-FIXTURE-claude-code-refresh", expires_at=1767323045.5, email="a@example.com",
        source=f"imported from {path} (Claude Code)",
    )


def test_claude_code_config_dir_keeps_claude_json_inside_it(tmp_path: Path) -> None:
    config_dir = tmp_path / "claude-work"
    write_json(config_dir / ".credentials.json", CLAUDE_CODE_FILE)
    write_json(config_dir / ".claude.json", {"oauthAccount": {"emailAddress": "work@example.com"}})
    [found] = discover(tmp_path / "home", {"CLAUDE_CONFIG_DIR": str(config_dir)})
    assert (found.path, found.token.email if found.token else None) == (config_dir / ".credentials.json", "work@example.com")


def test_claude_code_without_claude_json_has_no_email(tmp_path: Path) -> None:
    found = read_source(write_json(tmp_path / ".claude" / ".credentials.json", CLAUDE_CODE_FILE))
    assert found.token is not None and found.token.email is None
    assert found.label == "claude"


def test_codex_cli_auth_json_expires_when_its_access_token_says(home: Path) -> None:
    path = home / ".codex" / "auth.json"
    found = read_source(path)
    assert (found.origin, found.label, found.protocol, found.missing) == (CODEX_CLI, "codex-b_example.com", "openai-responses", [])
    assert found.token == Token(
        kind="codex", access_token=CODEX_ACCESS, refresh_token="rt-FIXTURE-codex-cli-refresh",
        expires_at=1770091506.0, email="b@example.com", account_id="acc-b",
        source=f"imported from {path} (Codex CLI)",
    )


def test_codex_account_comes_from_the_id_token_when_auth_json_has_none(tmp_path: Path) -> None:
    data = {**CODEX_AUTH, "tokens": {**CODEX_AUTH["tokens"], "account_id": None, "access_token": "opaque"}}
    found = read_source(write_json(tmp_path / "auth.json", data))
    assert found.token is not None
    assert (found.token.account_id, found.token.email, found.token.expires_at) == ("acc-b", "b@example.com", None)


def test_codex_home_is_where_auth_json_is_looked_for(home: Path, tmp_path: Path) -> None:
    write_json(tmp_path / "codex-home" / "auth.json", {**CODEX_AUTH, "tokens": {**CODEX_AUTH["tokens"], "account_id": "acc-x"}})
    codex = [f for f in discover(home, {"CODEX_HOME": str(tmp_path / "codex-home")}) if f.origin == CODEX_CLI]
    assert [(f.path, f.token.account_id if f.token else None) for f in codex] == [(tmp_path / "codex-home" / "auth.json", "acc-x")]


def test_codex_api_key_is_not_a_login_and_says_what_to_write_instead(tmp_path: Path) -> None:
    path = write_json(tmp_path / "auth.json", {"OPENAI_API_KEY": "sk-proj-FIXTURE-api-key", "tokens": None})
    found = read_source(path)
    assert (found.origin, found.token) == (CODEX_CLI, None)
    assert found.reason == "holds an OpenAI API key, not a ChatGPT login"
    assert found.fix == ('export OPENAI_API_KEY with that key and add - {label: openai, key: "${OPENAI_API_KEY}"} '
                         "to a provider with protocol openai-responses")
    status, output = run(tmp_path, str(path))
    assert status == 1
    assert "sk-proj-FIXTURE" not in output
    assert output == (
        f"Codex CLI  ~/auth.json\n"
        f"  not imported: holds an OpenAI API key, not a ChatGPT login\n"
        f"  instead: {found.fix}\n"
    )
    assert not (tmp_path / "tokens").exists()


CPA_TOKENS = {
    "claude-c@example.com.json": Token(
        kind="claude", access_token="sk-ant-oat01-FIXTURE-cpa-claude-access",
        refresh_token="sk-ant-ort01-FIXTURE-cpa-claude-refresh", expires_at=1772600767.0, email="c@example.com"),
    "codex-d@example.com-plus.json": Token(
        kind="codex", access_token="FIXTURE-cpa-codex-access", refresh_token="rt-FIXTURE-cpa-codex-refresh",
        expires_at=1775369228.0, email="d@example.com", account_id="acc-d"),
    "gemini-e@example.com-proj-1.json": Token(
        kind="gemini-cli", access_token="ya29.FIXTURE-cpa-gemini-access", refresh_token="1//FIXTURE-cpa-gemini-refresh",
        expires_at=1772600767.25, email="e@example.com", project_id="proj-1"),
    "antigravity-f_example_com.json": Token(
        kind="antigravity", access_token="ya29.FIXTURE-cpa-antigravity-access",
        refresh_token="1//FIXTURE-cpa-antigravity-refresh", expires_at=1748736000.0, email="f@example.com",
        project_id="proj-f"),
}


@pytest.mark.parametrize("name", CPA_TOKENS)
def test_cliproxyapi_files(home: Path, name: str) -> None:
    path = home / ".cli-proxy-api" / name
    found = read_source(path)
    assert (found.origin, found.reason) == (CLIPROXYAPI, None)
    assert found.token == Token(**{**CPA_TOKENS[name].__dict__, "source": f"imported from {path} (CLIProxyAPI)"})


def test_cliproxyapi_antigravity_without_expired_uses_timestamp_and_lifetime(tmp_path: Path) -> None:
    data = {k: v for k, v in CPA_FILES["antigravity-f_example_com.json"].items() if k != "expired"}
    found = read_source(write_json(tmp_path / "antigravity.json", data))
    assert found.token is not None and found.token.expires_at == 1748732401 + 3599


def test_cliproxyapi_gemini_with_several_projects_has_none_to_send(tmp_path: Path) -> None:
    data = {**CPA_FILES["gemini-e@example.com-proj-1.json"], "project_id": "proj-1,proj-2"}
    found = read_source(write_json(tmp_path / "gemini-e@example.com-all.json", data))
    assert found.token is not None and found.token.project_id is None
    assert found.missing == ["project_id"]


def test_a_gemini_login_without_a_project_says_how_to_get_one(tmp_path: Path) -> None:
    data = {**CPA_FILES["gemini-e@example.com-proj-1.json"], "project_id": "ALL"}
    source = write_json(tmp_path / "auths" / "gemini-e@example.com-all.json", data)
    status, output = run(tmp_path, str(source))
    assert status == 0
    assert ("  has no project_id, which gemini-cli requests need\n"
            "  to fix: `modelmux login gemini-cli --label e_example.com` logs in again and finds the project "
            "(GOOGLE_CLOUD_PROJECT=ID chooses one), or add \"project_id\": \"ID\" to ~/tokens/gemini-cli-e_example.com.json\n"
            ) in output  # fmt: skip


@pytest.mark.parametrize(
    "content, origin, reason",
    [
        ('{"type": "claude", ', None, "is not JSON"),
        ("[1, 2]", None, "is not a login modelmux recognises (Claude Code's, the Codex CLI's or CLIProxyAPI's)"),
        ('{"type": "qwen"}', CLIPROXYAPI, "is a CLIProxyAPI 'qwen' login; modelmux imports claude, codex, gemini, antigravity ones"),
        ('{"type": "claude", "email": "x@example.com"}', CLIPROXYAPI, "has no access_token"),
        ('{"claudeAiOauth": {}}', CLAUDE_CODE, "has no claudeAiOauth.accessToken: Claude Code is not logged in to a subscription here"),
        ('{"OPENAI_API_KEY": null}', CODEX_CLI, "has no tokens.access_token: the Codex CLI is not logged in with ChatGPT here"),
        ('{"modelmux_oauth": 1, "kind": "claude", "access_token": "x"}', None,
         "is already a modelmux token file: name it in routes.yaml as it is"),
    ],
)
def test_files_that_cannot_be_imported_say_why(tmp_path: Path, content: str, origin: str | None, reason: str) -> None:
    path = tmp_path / "file.json"
    path.write_text(content)
    found = read_source(path)
    assert (found.origin, found.token, found.reason) == (origin, None, reason)


def test_unreadable_file_is_listed_with_the_reason(tmp_path: Path) -> None:
    assert read_source(tmp_path / "missing.json").reason == "cannot be read (No such file or directory)"
    assert [(f.path, f.reason) for f in discover(tmp_path, {}, [tmp_path / "nope"])] == [(tmp_path / "nope", "does not exist")]


def test_macos_keeps_claude_code_in_the_keychain(tmp_path: Path) -> None:
    assert discover(tmp_path, {}, platform="linux") == []
    [found] = discover(tmp_path, {}, platform="darwin")
    assert (found.origin, found.token, found.fix) == (CLAUDE_CODE, None, "log in with `modelmux login claude`")
    assert found.reason == ('does not exist: on macOS Claude Code keeps its login in the Keychain '
                            '(item "Claude Code-credentials"), which modelmux does not read')


# --- The command ----------------------------------------------------------------------------


LISTING = """\
Claude Code  ~/.claude/.credentials.json
  claude login of a@example.com, expires 2026-01-02 03:04 UTC; serves protocol anthropic
  wrote ~/tokens/claude-a_example.com.json
Codex CLI  ~/.codex/auth.json
  codex login of b@example.com (ChatGPT account acc-b), expires 2026-02-03 04:05 UTC; serves protocol openai-responses
  wrote ~/tokens/codex-b_example.com.json
CLIProxyAPI  ~/.cli-proxy-api/antigravity-f_example_com.json
  antigravity login of f@example.com (project proj-f), expired 2025-06-01 00:00 UTC; serves protocol gemini
  wrote ~/tokens/antigravity-f_example.com.json
~/.cli-proxy-api/broken.json
  not imported: is not JSON
CLIProxyAPI  ~/.cli-proxy-api/claude-c@example.com.json
  claude login of c@example.com, expires 2026-03-04 05:06 UTC; serves protocol anthropic
  wrote ~/tokens/claude-c_example.com.json
CLIProxyAPI  ~/.cli-proxy-api/codex-d@example.com-plus.json
  codex login of d@example.com (ChatGPT account acc-d), expires 2026-04-05 06:07 UTC; serves protocol openai-responses
  wrote ~/tokens/codex-d_example.com.json
CLIProxyAPI  ~/.cli-proxy-api/gemini-e@example.com-proj-1.json
  gemini-cli login of e@example.com (project proj-1), expires 2026-03-04 05:06 UTC; serves protocol gemini
  wrote ~/tokens/gemini-cli-e_example.com.json
CLIProxyAPI  ~/.cli-proxy-api/qwen-g@example.com.json
  not imported: is a CLIProxyAPI 'qwen' login; modelmux imports claude, codex, gemini, antigravity ones

routes.yaml: add to the credentials of a provider with protocol anthropic:
  - {label: claude-a_example.com, oauth: ~/tokens/claude-a_example.com.json}
  - {label: claude-c_example.com, oauth: ~/tokens/claude-c_example.com.json}

routes.yaml: add to the credentials of a provider with protocol openai-responses:
  - {label: codex-b_example.com, oauth: ~/tokens/codex-b_example.com.json}
  - {label: codex-d_example.com, oauth: ~/tokens/codex-d_example.com.json}

routes.yaml: add to the credentials of a provider with protocol gemini:
  - {label: antigravity-f_example.com, oauth: ~/tokens/antigravity-f_example.com.json}
  - {label: gemini-cli-e_example.com, oauth: ~/tokens/gemini-cli-e_example.com.json}

note: Claude and Codex refresh tokens are single-use, so a copy and its original share one login: after the tool \
refreshes its own, run `modelmux import` again; after modelmux refreshes, the tool must log in again. \
`modelmux login` gives modelmux a login of its own.
"""


def test_import_lists_copies_and_prints_routes_lines(home: Path) -> None:
    before = snapshot(home)
    status, output = run(home)
    assert status == 0
    assert output == LISTING
    originals = {name: taken for name, taken in snapshot(home).items() if not name.startswith(str(home / "tokens"))}
    assert originals == before  # bytes, mtime and mode
    written = sorted(p.name for p in (home / "tokens").iterdir())
    assert written == ["antigravity-f_example.com.json", "claude-a_example.com.json", "claude-c_example.com.json",
                       "codex-b_example.com.json", "codex-d_example.com.json", "gemini-cli-e_example.com.json"]
    for path in (home / "tokens").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "tokens").stat().st_mode) == 0o700
    assert tokens.read(home / "tokens" / "claude-a_example.com.json") == read_source(home / ".claude" / ".credentials.json").token


def test_no_token_value_is_ever_printed(home: Path) -> None:
    outputs = [run(home, "--dry-run")[1], run(home)[1], run(home)[1], run(home, "--json")[1]]
    for output in outputs:
        assert not [secret for secret in SECRETS if secret in output]
        assert "FIXTURE" not in output


def test_dry_run_lists_and_writes_nothing(home: Path) -> None:
    before = snapshot(home)
    status, output = run(home, "--dry-run")
    assert status == 0
    assert output == LISTING.replace("  wrote ~/", "  would write ~/")
    assert snapshot(home) == before
    assert not (home / "tokens").exists()


def test_import_again_changes_nothing_and_says_so(home: Path) -> None:
    run(home)
    before = snapshot(home / "tokens")
    _, output = run(home)
    assert output == LISTING.replace("  wrote ~/", "  unchanged ~/")
    assert snapshot(home / "tokens") == before


def test_a_newer_token_is_kept_and_an_older_one_replaced(home: Path) -> None:
    source = home / ".claude" / ".credentials.json"
    [found] = discover(home, {}, [source])
    target = home / "tokens" / "claude-a_example.com.json"
    refreshed = Token(kind="claude", access_token="sk-ant-oat01-refreshed", refresh_token="rt-2", expires_at=1767400000)
    tokens.write(target, refreshed)
    outcome = import_to(found, home / "tokens")
    assert (outcome.action, outcome.detail) == (
        "kept", "it holds a token that expires later (2026-01-03 00:26 UTC); delete it to import this one anyway")
    assert tokens.read(target) == refreshed
    tokens.write(target, Token(kind="claude", access_token="sk-ant-oat01-older", expires_at=1767000000))
    assert import_to(found, home / "tokens").action == "replaced"
    assert tokens.read(target) == found.token


def test_one_account_from_two_tools_is_one_file_and_one_line(home: Path) -> None:
    older = {**CPA_FILES["claude-c@example.com.json"], "email": "a@example.com", "expired": "2025-12-01T00:00:00Z"}
    write_json(home / ".cli-proxy-api" / "claude-a@example.com.json", older)
    _, output = run(home, str(home / ".claude" / ".credentials.json"), str(home / ".cli-proxy-api" / "claude-a@example.com.json"))
    assert output.splitlines()[:8] == [
        "Claude Code  ~/.claude/.credentials.json",
        "  claude login of a@example.com, expires 2026-01-02 03:04 UTC; serves protocol anthropic",
        "  wrote ~/tokens/claude-a_example.com.json",
        "CLIProxyAPI  ~/.cli-proxy-api/claude-a@example.com.json",
        "  claude login of a@example.com, expired 2025-12-01 00:00 UTC; serves protocol anthropic",
        "  kept ~/tokens/claude-a_example.com.json: it holds a token that expires later (2026-01-02 03:04 UTC); "
        "delete it to import this one anyway",
        "",
        "routes.yaml: add to the credentials of a provider with protocol anthropic:",
    ]
    assert output.count("- {label: claude-a_example.com,") == 1


def test_a_file_in_the_way_that_is_not_a_token_file_is_left_alone(home: Path) -> None:
    target = home / "tokens" / "codex-b_example.com.json"
    target.parent.mkdir()
    target.write_text("my notes\n")
    status, output = run(home, str(home / ".codex" / "auth.json"))
    assert status == 1
    assert target.read_text() == "my notes\n"
    assert output.splitlines()[2] == ("  refused ~/tokens/codex-b_example.com.json: it exists and is not a private "
                                      "modelmux token file; move it away or pass --dir")


def test_a_source_others_can_read_is_imported_and_the_copy_is_private(home: Path) -> None:
    source = home / ".cli-proxy-api" / "claude-c@example.com.json"
    source.chmod(0o644)
    status, output = run(home, str(source))
    assert status == 0
    copy = home / "tokens" / "claude-c_example.com.json"
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert stat.S_IMODE(source.stat().st_mode) == 0o644
    assert tokens.read(copy).access_token == "sk-ant-oat01-FIXTURE-cpa-claude-access"


def test_a_directory_argument_is_read_as_an_auth_dir(home: Path, tmp_path: Path) -> None:
    other = tmp_path / "auths"
    write_json(other / "codex-x@example.com.json", CPA_FILES["codex-d@example.com-plus.json"])
    found = discover(home, {}, [other])
    assert [(f.path.name, f.label) for f in found] == [("codex-x@example.com.json", "codex-d_example.com")]


def test_nothing_found_names_the_places_looked_at(tmp_path: Path) -> None:
    status, output = run(tmp_path)
    assert status == 1
    assert output == ("no logins found in ~/.claude/.credentials.json, ~/.codex/auth.json, ~/.cli-proxy-api; "
                      "pass a file or directory: modelmux import PATH\n")


def test_json_lists_what_was_found_and_done(home: Path) -> None:
    status, output = run(home, "--json")
    document = json.loads(output)
    assert (status, document["directory"], document["dry_run"]) == (0, str(home / "tokens"), False)
    by_name = {Path(e["source"]).name: e for e in document["found"]}
    assert by_name["auth.json"] == {
        "source": str(home / ".codex" / "auth.json"), "origin": "Codex CLI", "kind": "codex", "email": "b@example.com",
        "account_id": "acc-b", "project_id": None, "expires_at": 1770091506.0, "protocol": "openai-responses",
        "missing": [], "label": "codex-b_example.com",
        "token_file": str(home / "tokens" / "codex-b_example.com.json"), "action": "wrote", "detail": None,
        "routes_line": "- {label: codex-b_example.com, oauth: ~/tokens/codex-b_example.com.json}",
        "reason": None, "fix": None,
    }
    assert by_name["broken.json"]["reason"] == "is not JSON" and by_name["broken.json"]["action"] is None


def test_cli_import_uses_the_default_token_directory(home: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HOME", str(home))
    for name in ("CODEX_HOME", "CLAUDE_CONFIG_DIR", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    assert cli.main(["import", str(home / ".claude" / ".credentials.json")]) == 0
    assert "  wrote ~/.config/modelmux/tokens/claude-a_example.com.json" in capsys.readouterr().out
    assert (home / ".config" / "modelmux" / "tokens" / "claude-a_example.com.json").is_file()
    assert cli.main(["import", "--dry-run", "--dir", str(home / "elsewhere"), str(home / ".codex")]) == 0
    assert "  would write ~/elsewhere/codex-b_example.com.json" in capsys.readouterr().out
    assert not (home / "elsewhere").exists()


# --- The copies in routes.yaml ------------------------------------------------------------------


def routes_yaml(home: Path, lines: dict[str, list[str]]) -> Path:
    base_urls = {"anthropic": "https://api.anthropic.com", "openai-responses": "https://api.openai.com/v1",
                 "gemini": "https://generativelanguage.googleapis.com/v1beta"}
    text = "providers:\n"
    for protocol, credentials in lines.items():
        text += f"  {protocol}-subscription:\n    protocol: {protocol}\n    base_url: {base_urls[protocol]}\n"
        text += "    credentials:\n" + "".join(f"      {line}\n" for line in credentials)
    text += f"default: {{provider: {next(iter(lines))}-subscription}}\n"
    path = home / "routes.yaml"
    path.write_text(text)
    return path


def printed_lines(found: list[Found], home: Path, protocol: str) -> list[str]:
    return [import_logins.routes_line(f, import_to(f, home / "tokens", dry_run=True), home)
            for f in found if f.protocol == protocol]


def test_printed_lines_load_under_a_provider_of_their_protocol(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(home))  # the lines say ~/tokens/...
    run(home)
    found = discover(home, {})
    path = routes_yaml(home, {p: printed_lines(found, home, p) for p in ("anthropic", "openai-responses")})
    loaded = loader.load(path, {})
    credentials = {c.label: c for p in loaded.providers.values() for c in p.credentials}
    assert sorted(credentials) == ["claude-a_example.com", "claude-c_example.com", "codex-b_example.com", "codex-d_example.com"]
    assert credentials["codex-b_example.com"].oauth is not None
    assert credentials["codex-b_example.com"].oauth.token.account_id == "acc-b"


def test_gemini_logins_load_under_a_gemini_provider(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(home))
    run(home)
    path = routes_yaml(home, {"gemini": printed_lines(discover(home, {}), home, "gemini")})
    loaded = loader.load(path, {})
    holders = [c.oauth for c in loaded.providers["gemini-subscription"].credentials]
    assert [(h.kind, h.token.project_id) for h in holders if h is not None] == [
        ("antigravity", "proj-f"), ("gemini-cli", "proj-1")]


def test_a_login_under_the_wrong_protocol_is_named(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(home))
    run(home)
    path = routes_yaml(home, {"anthropic": ["- {label: codex, oauth: tokens/codex-b_example.com.json}"]})
    with pytest.raises(ConfigError) as raised:
        loader.load(path, {})
    assert raised.value.problems == [
        f"providers.anthropic-subscription.credentials[0].oauth: {home / 'tokens' / 'codex-b_example.com.json'} holds "
        "a codex login (a ChatGPT Plus/Pro subscription (the Codex CLI's login)), which serves protocol "
        "openai-responses; put it under a provider with that protocol"
    ]

