"""Installing ``hy3dshape``, the package the Hunyuan3D-2.1 shape weights need.

It is not on PyPI and its folder in the Hunyuan3D-2.1 repository has no packaging (upstream's
demos put it on ``sys.path``). This step does the same, once, reproducibly: a partial, sparse
clone of the repository at a pinned commit (only ``hy3dshape/`` and the top-level files, the
licence and notice among them) beside the virtual environment, and a ``.pth`` file that puts
its folder on the environment's path, so that ``import hy3dshape`` works in every process that
uses it. Its two extra dependencies come with the ``hy3dshape`` extra (``omegaconf``, ``timm``).

The weights and this code are under the Tencent Hunyuan 3D 2.1 Community License, which does not
apply in the EU, the UK and South Korea: read ``LICENSE`` in the clone before using them.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

REPOSITORY = "https://github.com/Tencent-Hunyuan/Hunyuan3D-2.1"
# main on 2025-06-20 ("Update README.md"), the newest commit of the repository's main branch.
COMMIT = "5e3ec6def57591d22ff44722cfe9bea1266084b0"
INSTALL_COMMAND = "make hy3dshape"
PTH_NAME = "sweedle-hy3dshape.pth"


def missing_message(model_path: str, subfolder: str, error: object) -> str:
    """What to say when the 2.1 weights are configured and hy3dshape does not import."""
    return (
        f"the Hunyuan3D-2.1 weights ({model_path}, {subfolder}) need the hy3dshape package, "
        f"which is not importable ({error}). It is not on PyPI: install it with "
        f"`{INSTALL_COMMAND}` (a pinned checkout of {REPOSITORY}'s hy3dshape/ folder, put on the "
        f"venv's path). Or use the 2.0 family, which needs hy3dgen alone (the default): "
        f"HUNYUAN_MODEL_PATH=tencent/Hunyuan3D-2 HUNYUAN_SUBFOLDER=hunyuan3d-dit-v2-0"
    )


def install(
    checkout: Path,
    site_packages: Path,
    repository: str = REPOSITORY,
    commit: str = COMMIT,
    say: Callable[[str], None] = print,
) -> Path:
    """Check ``repository`` out at ``commit`` into ``checkout`` (sparse: ``hy3dshape/`` and
    the top-level files) and put ``checkout/hy3dshape`` on ``site_packages``' path; returns
    that folder. Running it again moves an existing checkout to ``commit``.

    Raises RuntimeError naming the git command that failed, or what the checkout lacks.
    """
    if shutil.which("git") is None:
        raise RuntimeError("git is not installed: install it (e.g. apt-get install git)")
    if not (checkout / ".git").is_dir():
        checkout.parent.mkdir(parents=True, exist_ok=True)
        say(f"cloning {repository} (hy3dshape/ only) into {checkout}")
        _git("clone", "--filter=blob:none", "--no-checkout", "--sparse", repository, str(checkout))
    _git("-C", str(checkout), "sparse-checkout", "set", "hy3dshape")
    if _git_ok("-C", str(checkout), "cat-file", "-e", f"{commit}^{{commit}}") is False:
        say(f"fetching {commit}")
        _git("-C", str(checkout), "fetch", "--filter=blob:none", "origin", commit)
    say(f"checking out {commit}")
    _git("-C", str(checkout), "-c", "advice.detachedHead=false", "checkout", "--force", commit)
    package = checkout / "hy3dshape"
    if not (package / "hy3dshape" / "__init__.py").is_file():
        raise RuntimeError(f"{package} has no hy3dshape/__init__.py: not the Hunyuan3D-2.1 code")
    licence = next((p for p in (package / "LICENSE", checkout / "LICENSE") if p.is_file()), None)
    if licence is None:
        raise RuntimeError(f"{checkout} has no LICENSE beside hy3dshape: refusing to use it")
    site_packages.mkdir(parents=True, exist_ok=True)
    (site_packages / PTH_NAME).write_text(f"{package.resolve()}\n")
    say(f"hy3dshape is importable from {package} (licence: {licence})")
    return package


def _git(*args: str) -> None:
    done = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        detail = " ".join((done.stderr or done.stdout).split())
        raise RuntimeError(f"git {' '.join(args)} failed: {detail}")


def _git_ok(*args: str) -> bool:
    done = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
    return done.returncode == 0
