"""`make serve` (`sweedle serve`) listens on loopback unless SWEEDLE_HOST says otherwise, and
refuses to listen on the network without API keys."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

SWEEDLE = str(Path(sys.executable).parent / "sweedle")
KEY = "swd_security_test_key_0123456789"


def serve(home: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("API_KEYS", "SWEEDLE_"))
    }
    environment |= {"HOME": str(home), "HF_HUB_OFFLINE": "1", "REMBG_MODEL": "none", **env}
    return subprocess.run(
        [SWEEDLE, "serve", "--dry-run", "--config", str(Path("configs/cpu.yaml").resolve())],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def served_config(done: subprocess.CompletedProcess) -> dict:
    command = next(line for line in done.stdout.splitlines() if " run " in line)
    return yaml.safe_load(Path(command.split(" run ", 1)[1].strip()).read_text())


def test_by_default_it_listens_on_loopback(tmp_path: Path) -> None:
    done = serve(tmp_path)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "listening on 127.0.0.1 (this machine only" in done.stdout
    assert served_config(done)["http_options"]["host"] == "127.0.0.1"


def test_the_network_without_keys_is_refused_saying_what_to_set(tmp_path: Path) -> None:
    done = serve(tmp_path, SWEEDLE_HOST="0.0.0.0")

    assert done.returncode == 2
    assert "API_KEYS" in done.stderr and "ALLOW_ANONYMOUS_NETWORK" in done.stderr


def test_the_network_with_keys_listens_where_asked(tmp_path: Path) -> None:
    done = serve(tmp_path, SWEEDLE_HOST="0.0.0.0", SWEEDLE_PORT="8123", API_KEYS=KEY)

    assert done.returncode == 0, done.stdout + done.stderr
    options = served_config(done)["http_options"]
    assert (options["host"], options["port"]) == ("0.0.0.0", 8123)


def test_open_access_when_asked_for_is_warned_about(tmp_path: Path) -> None:
    done = serve(tmp_path, SWEEDLE_HOST="0.0.0.0", ALLOW_ANONYMOUS_NETWORK="true")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNING: ALLOW_ANONYMOUS_NETWORK is on" in done.stdout
