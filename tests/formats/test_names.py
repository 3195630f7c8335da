"""Names, aliases, specs and entry paths: what is allowed and what each refusal says."""

from __future__ import annotations

import pytest

from plait import InvalidNameError, InvalidPathError
from plait.formats.names import MAX_NAME_LENGTH, Spec, check_alias, check_entry_path, check_name, parse_spec


@pytest.mark.parametrize("name", ["images", "bert-base.v2", "a", "A_1", "9lives", "x" * MAX_NAME_LENGTH])
def test_valid_names_are_returned_unchanged(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "non-empty string"),
        (None, "non-empty string"),
        (3, "non-empty string"),
        ("-images", "is not allowed"),
        (".hidden", "is not allowed"),
        ("has space", "is not allowed"),
        ("a/b", "is not allowed"),
        ("a:b", "is not allowed"),
        ("trailing.", "is not allowed"),
        ("a..b", "is not allowed"),
        ("ünïcode", "is not allowed"),
        ("x" * (MAX_NAME_LENGTH + 1), "the limit is 128"),
    ],
)
def test_invalid_names_are_refused_with_the_rule(name: object, message: str) -> None:
    with pytest.raises(InvalidNameError, match=message) as info:
        check_name(name)
    assert isinstance(info.value, ValueError)


def test_an_alias_may_not_look_like_a_version_or_be_latest() -> None:
    assert check_alias("production") == "production"
    for alias in ("v3", "v01", "V3", "v00", "v123456789012345678901234"):
        with pytest.raises(InvalidNameError, match="looks like a version number"):
            check_alias(alias)
    assert check_alias("v3-candidate") == "v3-candidate" and check_alias("version3") == "version3"
    with pytest.raises(InvalidNameError, match="cannot be set by hand"):
        check_alias("latest")
    with pytest.raises(InvalidNameError, match="alias 'bad alias' is not allowed"):
        check_alias("bad alias")


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("images", Spec("images", alias="latest")),
        ("images:latest", Spec("images", alias="latest")),
        ("images:v0", Spec("images", number=0)),
        ("images:v12", Spec("images", number=12)),
        ("images:best", Spec("images", alias="best")),
    ],
)
def test_specs_parse_to_a_name_and_a_number_or_alias(text: str, spec: Spec) -> None:
    assert parse_spec(text) == spec


def test_a_spec_prints_back_in_canonical_form() -> None:
    assert str(parse_spec("images:v3")) == "images:v3"
    assert str(parse_spec("images")) == "images:latest"


@pytest.mark.parametrize("text", ["images:", "images:a b", "images:v3:x", "images:-x"])
def test_malformed_specs_say_how_to_write_one(text: str) -> None:
    with pytest.raises(InvalidNameError, match="write 'name', 'name:v3', 'name:latest' or 'name:<alias>'"):
        parse_spec(text)


def test_a_spec_with_a_bad_name_or_not_a_string_is_refused() -> None:
    with pytest.raises(InvalidNameError, match="is not allowed"):
        parse_spec("bad name:v1")
    with pytest.raises(InvalidNameError, match="must be a string like 'images:v3', got int"):
        parse_spec(3)


@pytest.mark.parametrize(
    ("path", "normal"),
    [("a.txt", "a.txt"), ("a/b/c.bin", "a/b/c.bin"), ("a\\b.txt", "a/b.txt"), ("./a//b/./c", "a/b/c"), ("a..b", "a..b")],
)
def test_entry_paths_are_normalised(path: str, normal: str) -> None:
    assert check_entry_path(path) == normal


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("../etc/passwd", "climbs out"),
        ("a/../../b", "climbs out"),
        ("a\\..\\..\\b", "climbs out"),
        ("/etc/passwd", "is absolute"),
        ("\\\\server\\share\\x", "is absolute"),
        ("C:/Windows/x", "is absolute"),
        ("c:evil", "is absolute"),
        ("", "non-empty string"),
        (".", "names no file"),
        ("a/\x00b", "NUL"),
        ("x" * 5000, "too long"),
    ],
)
def test_entry_paths_that_could_escape_are_refused(path: str, message: str) -> None:
    with pytest.raises(InvalidPathError, match=message) as info:
        check_entry_path(path)
    assert info.value.path == path


@pytest.mark.parametrize("text", ["images:v01", "images:V3", "images:v00", "images:v1234567890123456789012"])
def test_a_spec_that_looks_like_a_version_but_is_not_one_is_refused(text: str) -> None:
    # an alias of that name could otherwise shadow the version the user meant
    with pytest.raises(InvalidNameError, match="not a valid spec"):
        parse_spec(text)


def test_an_entry_path_part_longer_than_filesystems_allow_is_refused() -> None:
    assert check_entry_path("d/" + "a" * 255) == "d/" + "a" * 255
    for path in ("a" * 256, "d/" + "é" * 128, "é" * 200 + "/x"):  # é is two bytes in UTF-8
        with pytest.raises(InvalidPathError, match="filesystems allow 255"):
            check_entry_path(path)


def test_an_entry_path_that_is_not_utf8_is_refused() -> None:
    name = b"caf\xe9.txt".decode("utf-8", "surrogateescape")  # a Latin-1 file name as os.listdir gives it
    with pytest.raises(InvalidPathError, match=r"b'caf\\xe9.txt' is not valid UTF-8"):
        check_entry_path(name)
    assert check_entry_path("café.txt") == "café.txt"
