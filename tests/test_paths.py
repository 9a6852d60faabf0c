"""Where modelmux keeps its files, per platform: pure, so Linux covers all three."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelmux.oauth.tokens import default_directory
from modelmux.paths import config_dir, state_dir

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
