"""The settings the test app runs with, in the serve tier (on Ray) and the api tier (without),
and the API keys its callers use."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

# The app's API keys (in a keys file, as SHA-256 digests): the tests call as "admin" unless they
# test access itself.
KEYS = {
    # The harness's own key: no request limit (the schema fuzz alone sends hundreds a minute).
    "admin": ("swd_test_admin", ["read", "write", "priority", "admin"], {"requests_per_minute": 0}),
    # The schema fuzz's user key (no request limit: it sends hundreds a minute).
    "fuzzer": ("swd_test_fuzzer", ["read", "write"], {"requests_per_minute": 0}),
    # alice's engine bundles go only under projects/alice (her own export root).
    "alice": ("swd_test_alice", ["read", "write"], {"export_roots": ["alice"]}),
    "bob": ("swd_test_bob", ["read", "write"], {}),
    "viewer": ("swd_test_viewer", ["read"], {}),
    "limited": ("swd_test_limited", ["read", "write"], {"requests_per_minute": 8}),
    "queue-capped": ("swd_test_capped", ["read", "write"], {"max_waiting_jobs": 1}),
}
WEBHOOK_SECRET = "test-webhook-secret"


def write_keys_file(path: Path, projects: Path) -> Path:
    """The keys file; a key's ``export_roots`` are folders under ``projects``."""
    entries = [
        {
            "name": name,
            "sha256": hashlib.sha256(key.encode()).hexdigest(),
            "scopes": scopes,
            **limits,
        }
        for name, (key, scopes, limits) in KEYS.items()
    ]
    for entry in entries:
        if "export_roots" in entry:
            entry["export_roots"] = [str(projects / root) for root in entry["export_roots"]]
    path.write_text(json.dumps({"keys": entries}))
    return path


def app_settings(data_dir: Path) -> dict[str, Any]:
    """The test app's settings, its database, files, keys file and export projects all under
    ``data_dir`` (`projects_of`)."""
    return {
        "database_url": f"sqlite+aiosqlite:///{data_dir / 'sweedle.db'}",
        "storage_dir": str(data_dir / "storage"),
        "generator_backend": "tests.serve.gate:GatedGenerator",
        "default_octree_resolution": 64,
        "preprocess_size": 256,
        "thumbnail_size": 96,
        "reconcile_interval_s": 5,
        # After a cluster crash the new queue takes the old one's jobs up once their leases run
        # out: short here, so the restart test waits little.
        "generator_lease_s": 10,
        "max_upload_mb": 2,
        "max_image_pixels": 20_000_000,
        "export_allowed_roots": [str(projects_of(data_dir))],
        "api_keys_file": str(write_keys_file(data_dir / "keys.json", projects_of(data_dir))),
        "webhook_secret": WEBHOOK_SECRET,
        "webhook_backoff_s": 0.2,
        "webhook_allowed_cidrs": ["127.0.0.0/8"],  # the test receivers listen there
        "cors_origins": ["http://studio.example"],
    }


def projects_of(data_dir: Path) -> Path:
    """The export root of the app whose data is in ``data_dir``."""
    return data_dir / "projects"
