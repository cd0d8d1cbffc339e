"""Run the Khronos glTF validator (node + the `gltf-validator` npm package) on a file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "tests" / "gltf_validator.js"
NODE_MODULES = REPO_ROOT / ".tools" / "node_modules"


class ValidatorMissing(RuntimeError):
    """node or the gltf-validator package is not installed."""


def validate_gltf(path: Path) -> dict:
    """The validator's report for ``path`` (``report["issues"]["numErrors"]`` etc.)."""
    node = shutil.which("node")
    if node is None:
        raise ValidatorMissing("node is not installed; install Node.js, then run `make setup`")
    if not (NODE_MODULES / "gltf-validator").is_dir():
        raise ValidatorMissing(
            f"the glTF validator is not installed in {NODE_MODULES}; run `make setup` "
            f"(npm install --prefix {REPO_ROOT / '.tools'} gltf-validator)"
        )
    env = {**os.environ, "NODE_PATH": str(NODE_MODULES)}
    result = subprocess.run(
        [node, str(SCRIPT), str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"glTF validator failed on {path}: {result.stderr.strip()}")
    return json.loads(result.stdout)
