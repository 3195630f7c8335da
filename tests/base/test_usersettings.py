"""User settings: a TOML file found by $PLAIT_CONFIG, $XDG_CONFIG_HOME or ~/.config; missing is empty,
malformed is one error naming the file and the line; the environment and a command add to it;
URL prefixes match whole segments only."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from plait import SettingsError
from plait.base.paths import user_config_path
from plait.base.places import is_under, parse_place
from plait.base.usersettings import load_user_settings
from plait.cli import main


def test_the_settings_file_is_found_by_env_then_xdg_then_home(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PLAIT_CONFIG", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_config_path() == tmp_path / "home" / ".config" / "plait" / "config.toml"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert user_config_path() == tmp_path / "xdg" / "plait" / "config.toml"
    monkeypatch.setenv("PLAIT_CONFIG", str(tmp_path / "mine.toml"))
    assert user_config_path() == tmp_path / "mine.toml"
    assert load_user_settings().allow == () and load_user_settings().path == ""  # missing: empty


def test_a_settings_file_is_read_and_other_sections_kept(monkeypatch, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[references]\nallow = ["/data/shared", "https://datasets.example.org/"]\n\n'
                    '[storage."s3://team-data/"]\nclient_kwargs = { endpoint_url = "http://127.0.0.1:9000" }\nkey = "k"\n\n'
                    '[storage."s3://team-data/raw/"]\nclient_kwargs = { region_name = "eu-west-1" }\n\n'
                    '[dashboard]\nport = 9000\n')
    monkeypatch.setenv("PLAIT_CONFIG", str(path))
    settings = load_user_settings()
    assert settings.allow == ("/data/shared", "https://datasets.example.org/")
    assert settings.get("dashboard.port") == 9000 and settings.get("dashboard.host", "x") == "x"
    assert settings.storage_options("s3://team-data/raw/a.csv") == {
        "key": "k", "client_kwargs": {"endpoint_url": "http://127.0.0.1:9000", "region_name": "eu-west-1"}}
    assert settings.storage_options("s3://team-database/a.csv") == {}  # whole segments only
    more = settings.with_overrides(allow=["/mnt"], storage={"": {"anon": True}})
    assert more.allow[-1] == "/mnt" and more.storage_options("gs://x/y") == {"anon": True}
    monkeypatch.setenv("PLAIT_ALLOW_REFERENCES", "/a, https://b.example/")
    monkeypatch.setenv("PLAIT_REFERENCE_OPTIONS", '{"anon": true}')
    env = load_user_settings()
    assert env.allow[-2:] == ("/a", "https://b.example/") and env.storage_options("s3://x/y") == {"anon": True}
    monkeypatch.setenv("PLAIT_ALLOW_REFERENCES", '["/c"]')
    assert load_user_settings().allow[-1] == "/c"


@pytest.mark.parametrize("text, message", [
    ("[references\nallow = 1\n", r"config.toml is not valid TOML: .*line 1"),
    ("[references]\nallow = [1]\n", "must be a list of local folders"),
    ("[references]\nallow = ['a::b']\n", "is not a folder or URL prefix"),
    ("references = 3\n", "references must be a table"),
    ('[storage]\n"s3://x/" = 3\n', "must be a table of fsspec options"),
])
def test_a_malformed_settings_file_is_one_line_naming_the_file(monkeypatch, tmp_path: Path, text, message) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    monkeypatch.setenv("PLAIT_CONFIG", str(path))
    with pytest.raises(SettingsError, match=message) as info:
        load_user_settings()
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    result = CliRunner().invoke(main, ["config", "--user"])
    assert result.exit_code == 2 and str(path) in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("name, value, message", [
    ("PLAIT_ALLOW_REFERENCES", "[1", "not valid JSON"),
    ("PLAIT_REFERENCE_OPTIONS", "[1]", "must be a JSON object"),
])
def test_bad_environment_settings_are_one_line(monkeypatch, name, value, message) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=message):
        load_user_settings()


def test_plait_config_user_shows_the_file_but_never_secrets(monkeypatch, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[references]\nallow = ["/data"]\n[storage."s3://b/"]\nsecret = "hunter2"\n')
    monkeypatch.setenv("PLAIT_CONFIG", str(path))
    result = CliRunner().invoke(main, ["config", "--user", "--allow-reference", "https://x.example/"])
    assert result.exit_code == 0, result.output
    assert str(path) in result.output and '"/data", "https://x.example/"' in result.output
    assert "secret" in result.output and "hunter2" not in result.output


@pytest.mark.parametrize("prefix, url, under", [
    ("https://example.org/data", "https://example.org/data/a.csv", True),
    ("https://example.org/data", "https://example.org/database", False),
    ("https://example.org", "https://example.org.evil.net/x", False),
    ("https://EXAMPLE.org/", "https://user:pw@example.ORG/x", True),
    ("https://", "https://anything.example/x", True),
    ("https://", "http://anything.example/x", False),
    ("http://127.0.0.1:9000", "http://127.0.0.1:9001/x", False),
    ("/data", "file:///data/x", True),
    ("file://localhost/data/", "/data", True),
    ("/data", "/database/x", False),
    ("s3://bucket", "s3://bucket/a/b", True),
    ("s3://bucket/a", "s3://bucket/ab", False),
])
def test_prefixes_match_whole_segments(prefix, url, under) -> None:
    assert is_under(parse_place(prefix), parse_place(url)) is under


@pytest.mark.parametrize("text", ["", "a::b", "file://otherhost/x", "https://h/a/../b", "https://h/a/%2e%2e/b", "1x://a"])
def test_malformed_places_are_refused(text) -> None:
    with pytest.raises(ValueError):
        parse_place(text)
