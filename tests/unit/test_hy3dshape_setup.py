"""``make hy3dshape``: a pinned, sparse checkout of a (local, stand-in) Hunyuan3D-2.1 repository
put on an environment's path, so that ``import hy3dshape`` works there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sweedle_core.hy3dshape_setup import PTH_NAME, install, missing_message


def git(folder: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(folder), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A repository laid out like Hunyuan3D-2.1, with two commits; (folder, first, second)."""
    repo = tmp_path_factory.mktemp("hunyuan21")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "tests@sweedle.invalid")
    git(repo, "config", "user.name", "tests")
    package = repo / "hy3dshape" / "hy3dshape"
    package.mkdir(parents=True)
    (repo / "LICENSE").write_text("TENCENT HUNYUAN 3D 2.1 COMMUNITY LICENSE AGREEMENT\n")
    (repo / "hy3dshape" / "LICENSE").write_text("TENCENT HUNYUAN 3D 2.1 COMMUNITY LICENSE\n")
    (repo / "hy3dpaint").mkdir()
    (repo / "hy3dpaint" / "big.bin").write_bytes(b"\0" * 4096)  # not wanted in the checkout
    (package / "__init__.py").write_text("")
    (package / "pipelines.py").write_text("VERSION = 'first'\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "first")
    first = git(repo, "rev-parse", "HEAD")
    (package / "pipelines.py").write_text("VERSION = 'second'\n")
    git(repo, "commit", "-q", "-am", "second")
    return repo, first, git(repo, "rev-parse", "HEAD")


def imported_version(site: Path) -> str:
    code = f"import site; site.addsitedir({str(site)!r}); import hy3dshape.pipelines as p; print(p.VERSION)"
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_the_pinned_commit_becomes_importable_with_its_licence(
    repository: tuple[Path, str, str], tmp_path: Path
) -> None:
    repo, first, second = repository
    checkout, site = tmp_path / "src" / "Hunyuan3D-2.1", tmp_path / "site"

    package = install(checkout, site, repository=f"file://{repo}", commit=first, say=lambda _: None)

    assert package == checkout / "hy3dshape"
    assert imported_version(site) == "first"
    assert (checkout / "LICENSE").is_file() and (package / "LICENSE").is_file()
    assert not (checkout / "hy3dpaint").exists()  # sparse: only hy3dshape/ and the top level
    assert (site / PTH_NAME).read_text().strip() == str(package.resolve())

    install(checkout, site, repository=f"file://{repo}", commit=second, say=lambda _: None)
    assert imported_version(site) == "second"


def test_an_unknown_commit_fails_naming_git(
    repository: tuple[Path, str, str], tmp_path: Path
) -> None:
    repo, _, _ = repository

    with pytest.raises(RuntimeError, match="git .* failed"):
        install(tmp_path / "co", tmp_path / "site", f"file://{repo}", "0" * 40, say=lambda _: None)
    assert not (tmp_path / "site" / PTH_NAME).exists()


def test_the_message_when_it_is_missing_says_what_to_run() -> None:
    message = missing_message("tencent/Hunyuan3D-2.1", "hunyuan3d-dit-v2-1", "No module named x")

    assert "`make hy3dshape`" in message and "No module named x" in message
    assert "HUNYUAN_MODEL_PATH=tencent/Hunyuan3D-2 " in message
