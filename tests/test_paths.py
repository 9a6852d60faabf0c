"""Where modelmux keeps its files, per platform: pure, so Linux covers all three."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modelmux.config.paths import adopt_beside, config_dir, config_state, state_dir
from modelmux.oauth.tokens import default_directory

HOME = Path("/home/ada")
WINDOWS = {"APPDATA": "/c/Users/ada/AppData/Roaming", "LOCALAPPDATA": "/c/Users/ada/AppData/Local"}


@pytest.mark.parametrize("platform", ["linux", "darwin"])
def test_posix_platforms_use_xdg_directories(platform: str) -> None:
    assert config_dir({}, HOME, platform) == HOME / ".config" / "modelmux"
    assert state_dir({}, HOME, platform) == HOME / ".local" / "state" / "modelmux"
    xdg = {"XDG_CONFIG_HOME": "/xdg/config", "XDG_STATE_HOME": "/xdg/state"}
    assert config_dir(xdg, HOME, platform) == Path("/xdg/config/modelmux")
    assert state_dir(xdg, HOME, platform) == Path("/xdg/state/modelmux")
    relative = {"XDG_CONFIG_HOME": "config", "XDG_STATE_HOME": ""}  # invalid per the XDG spec: ignored
    assert config_dir(relative, HOME, platform) == HOME / ".config" / "modelmux"
    assert state_dir(relative, HOME, platform) == HOME / ".local" / "state" / "modelmux"
    assert config_dir(WINDOWS, HOME, platform) == HOME / ".config" / "modelmux"


def test_windows_uses_roaming_config_and_local_state() -> None:
    assert config_dir(WINDOWS, HOME, "win32") == Path("/c/Users/ada/AppData/Roaming/modelmux")
    assert state_dir(WINDOWS, HOME, "win32") == Path("/c/Users/ada/AppData/Local/modelmux")
    assert config_dir({}, HOME, "win32") == HOME / "AppData" / "Roaming" / "modelmux"
    assert state_dir({}, HOME, "win32") == HOME / "AppData" / "Local" / "modelmux"
    assert config_dir({"XDG_CONFIG_HOME": "/xdg"} | WINDOWS, HOME, "win32") == Path("/c/Users/ada/AppData/Roaming/modelmux")


@pytest.mark.parametrize("platform", ["linux", "darwin", "win32"])
def test_the_state_directory_override_wins_everywhere(platform: str) -> None:
    assert state_dir({"MODELMUX_STATE_DIR": "/srv/mm", "XDG_STATE_HOME": "/x"} | WINDOWS, HOME, platform) == Path("/srv/mm")


def test_token_files_go_in_the_config_directory() -> None:
    assert default_directory({}, HOME) == HOME / ".config" / "modelmux" / "tokens"
    assert default_directory({"XDG_CONFIG_HOME": "/xdg"}, HOME) == Path("/xdg/modelmux/tokens")


def test_each_routes_yaml_has_its_own_state_files_in_the_state_directory(tmp_path: Path) -> None:
    environ = {"MODELMUX_STATE_DIR": str(tmp_path / "state")}
    a, b = tmp_path / "a" / "routes.yaml", tmp_path / "b" / "routes.yaml"
    usage_a = config_state(a, ".usage.jsonl", environ)
    assert usage_a.parent == tmp_path / "state"
    assert re.fullmatch(r"routes-[0-9a-f]{8}\.usage\.jsonl", usage_a.name)
    assert config_state(a, ".state.json", environ) == usage_a.with_name(usage_a.name.replace(".usage.jsonl", ".state.json"))
    assert config_state(b, ".usage.jsonl", environ) != usage_a  # same name, another file
    (tmp_path / "link").symlink_to(tmp_path / "a", target_is_directory=True)
    assert config_state(tmp_path / "link" / "routes.yaml", ".usage.jsonl", environ) == usage_a  # the same file


def test_a_state_file_kept_beside_routes_yaml_is_moved_once(tmp_path: Path) -> None:
    config = tmp_path / "routes.yaml"
    state = tmp_path / "state" / "routes-0123abcd.state.json"
    (tmp_path / "routes.state.json").write_text("old")
    adopt_beside(config, ".state.json", state)
    assert (state.read_text(), (tmp_path / "routes.state.json").exists()) == ("old", False)
    (tmp_path / "routes.state.json").write_text("older still")
    adopt_beside(config, ".state.json", state)  # the state directory's file wins
    assert (state.read_text(), (tmp_path / "routes.state.json").read_text()) == ("old", "older still")
    adopt_beside(config, ".usage.jsonl", tmp_path / "state" / "x.usage.jsonl")  # nothing beside it: nothing
    assert not (tmp_path / "state" / "x.usage.jsonl").exists()
