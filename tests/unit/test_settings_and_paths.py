"""Settings from file + environment, and path confinement."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ategnatos_mcp.errors import ConfigError, NotFoundError, PathNotAllowedError
from ategnatos_mcp.paths import confine, dataset_folder, safe_name
from ategnatos_mcp.settings import load_settings


def test_environment_overrides_the_file_and_urls_split_on_commas(tmp_path: Path) -> None:
    (tmp_path / "ategnatos.toml").write_text(
        '[gpu]\nmax_usd_per_hour = 1.25\nmonthly_usd_cap = 50\n[comfyui]\nurls = ["http://a:1"]\n'
    )
    settings = load_settings(
        env={
            "ATEGNATOS_HOME": str(tmp_path),
            "ATEGNATOS_GPU__MONTHLY_USD_CAP": "80",
            "ATEGNATOS_COMFYUI_URL": "http://127.0.0.1:8188, http://10.0.0.5:8188",
            "LAMBDA_API_KEY": "lam-key",
            "ATEGNATOS_VAST_API_URL": "http://127.0.0.1:5000/api/v0",
        }
    )
    assert settings.gpu.max_usd_per_hour == 1.25
    assert settings.gpu.monthly_usd_cap == 80
    assert settings.comfyui.urls == ["http://127.0.0.1:8188", "http://10.0.0.5:8188"]
    assert settings.lambda_api_key is not None and settings.lambda_api_key.get_secret_value() == "lam-key"
    assert "lam-key" not in repr(settings)
    assert settings.vast_api_url == "http://127.0.0.1:5000/api/v0"
    assert settings.provider_keys_present() == {"runpod": False, "vast": False, "lambda": True}


@pytest.mark.parametrize(
    ("content", "key"),
    [
        ("[gpu]\nmax_usd_per_hour = 'lots'\n", "gpu.max_usd_per_hour"),
        ("[gpu]\nmax_usd_per_houre = 2\n", "gpu.max_usd_per_houre"),
        ("runpod_api_key = 'abc'\n", "runpod_api_key"),
        ("[gpu\n", ""),
    ],
)
def test_bad_settings_file_names_the_key(tmp_path: Path, content: str, key: str) -> None:
    (tmp_path / "ategnatos.toml").write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"ATEGNATOS_HOME": str(tmp_path)})
    assert caught.value.key == key
    assert caught.value.hint
    assert "abc" not in str(caught.value)


@pytest.fixture
def roots(tmp_path: Path) -> tuple[Path, list[Path]]:
    home = tmp_path / "project"
    for sub in ("grimoire", "workspace/datasets/cats"):
        (home / sub).mkdir(parents=True)
    (home / "workspace" / "datasets" / "cats" / "a.png").write_bytes(b"png")
    (tmp_path / "secret.txt").write_text("secret")
    return home, [home / "grimoire", home / "workspace"]


def test_confine_accepts_paths_inside_the_roots(roots: tuple[Path, list[Path]]) -> None:
    home, allowed = roots
    assert confine("workspace/datasets/cats", home=home, roots=allowed, kind="dir").name == "cats"
    assert confine(str(home / "workspace/datasets/cats/a.png"), home=home, roots=allowed, kind="file").name == "a.png"
    assert confine("workspace/new-folder", home=home, roots=allowed, kind="new").name == "new-folder"


@pytest.mark.parametrize(
    "raw",
    ["workspace/../../secret.txt", "../secret.txt", "/etc/passwd", "workspace/link-out/secret.txt", "", "a\x00b"],
)
def test_confine_refuses_escapes(roots: tuple[Path, list[Path]], raw: str) -> None:
    home, allowed = roots
    (home / "workspace" / "link-out").symlink_to(home.parent)
    with pytest.raises(PathNotAllowedError) as caught:
        confine(raw, home=home, roots=allowed)
    assert caught.value.hint or "empty" in caught.value.message or "NUL" in caught.value.message


def test_confine_refuses_special_files_loops_and_wrong_kinds(roots: tuple[Path, list[Path]]) -> None:
    home, allowed = roots
    fifo = home / "workspace" / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(PathNotAllowedError, match="special file"):
        confine("workspace/pipe", home=home, roots=allowed)
    loop = home / "workspace" / "loop"
    loop.symlink_to(loop)
    with pytest.raises(PathNotAllowedError):
        confine("workspace/loop", home=home, roots=allowed)
    with pytest.raises(PathNotAllowedError, match="is a folder"):
        confine("workspace/datasets", home=home, roots=allowed, kind="file")
    with pytest.raises(NotFoundError):
        confine("workspace/nothing-here", home=home, roots=allowed)


def test_a_dataset_may_be_named_instead_of_given_by_path(roots: tuple[Path, list[Path]]) -> None:
    home, allowed = roots
    datasets = home / "workspace" / "datasets"
    (datasets / "dogs").mkdir()
    assert dataset_folder("cats", home=home, roots=allowed, datasets_dir=datasets) == datasets / "cats"
    assert dataset_folder(" cats ", home=home, roots=allowed, datasets_dir=datasets) == datasets / "cats"
    same = dataset_folder("workspace/datasets/cats", home=home, roots=allowed, datasets_dir=datasets)
    assert same == datasets / "cats"
    with pytest.raises(NotFoundError) as caught:
        dataset_folder("birds", home=home, roots=allowed, datasets_dir=datasets)
    assert "no dataset folder 'birds'" in caught.value.message and "cats, dogs" in caught.value.hint
    with pytest.raises(PathNotAllowedError):
        dataset_folder("..", home=home, roots=allowed, datasets_dir=datasets)
    (datasets / "cats" / "x").mkdir()
    with pytest.raises(PathNotAllowedError):  # outside the roots even though the name exists among the datasets
        dataset_folder(str(home.parent), home=home, roots=allowed, datasets_dir=datasets)


@pytest.mark.parametrize("bad", ["", "..", ".hidden", "a/b", "x" * 81, "name\nnewline"])
def test_safe_name_refuses_names_that_would_break_paths(bad: str) -> None:
    from ategnatos_mcp.errors import InvalidRequestError

    with pytest.raises(InvalidRequestError):
        safe_name(bad)
    assert safe_name("  launch mascot v2 ") == "launch mascot v2"
