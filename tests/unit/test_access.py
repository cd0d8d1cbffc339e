"""Access control: API keys, scopes, the keys file, per-key limits and ``sweedle keys``.

No HTTP here: the ingress strips "Bearer " and maps the errors; these tests check what it relies
on. Clocks are injected, so nothing sleeps.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from deployments import cli
from sweedle_core.access import (
    ApiKey,
    Caller,
    KeyRing,
    RequestLimiter,
    add_key_to_file,
    digest_of,
    load_keys_file,
    new_key,
    presented_key,
    waiting_jobs_exceeded,
)
from sweedle_core.config import Settings
from sweedle_core.errors import Forbidden, RateLimited, Unauthorized

USER_KEY, ADMIN_KEY, FILE_KEY = "user-key-0123456789", "admin-key-0123456789", "swd_file-key-0042"


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def settings(**values: Any) -> Settings:
    """Settings from these values only: no environment, no .env."""
    return Settings(_env_file=None, **values)


@pytest.fixture(autouse=True)
def no_key_env(monkeypatch):
    for name in ("API_KEYS", "ADMIN_API_KEYS", "API_KEYS_FILE", "RATE_LIMIT_PER_MINUTE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("MAX_WAITING_JOBS_PER_KEY", raising=False)


def write_keys(path: Path, *entries: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"keys": list(entries)}))
    return path


# -- Keys from the environment ---------------------------------------------------------------


def test_without_keys_everyone_is_an_admin_bounded_only_in_waiting_jobs():
    ring = KeyRing.from_settings(settings(rate_limit_per_minute=10, max_waiting_jobs_anonymous=7))
    assert not ring.enabled
    caller = ring.caller(None)
    assert caller == Caller.open(max_waiting_jobs=7)
    assert caller.admin and caller.sees is None and caller.owner is None
    assert caller.requests_per_minute == 0 and caller.max_waiting_jobs == 7
    assert all(caller.allows(scope) for scope in ("read", "write", "admin"))


def test_env_keys_read_and_write_admin_keys_everything():
    ring = KeyRing.from_settings(
        settings(api_keys=f" {USER_KEY} , other-key-0123456789,", admin_api_keys=ADMIN_KEY)
    )
    assert ring.enabled
    user = ring.caller(USER_KEY)
    assert user.scopes == {"read", "write"} and not user.admin
    assert user.name == f"key-{sha(USER_KEY)[:8]}"
    assert user.owner == user.sees == user.name
    admin = ring.caller(ADMIN_KEY)
    assert admin.scopes == {"read", "write", "priority", "admin"} and admin.admin
    assert admin.owner == f"key-{sha(ADMIN_KEY)[:8]}" and admin.sees is None
    assert ring.caller("other-key-0123456789").name != user.name
    assert len(ring.keys()) == 3


def test_a_key_listed_twice_is_one_key_and_admin_wins():
    ring = KeyRing.from_settings(
        settings(api_keys=f"{USER_KEY},{USER_KEY}", admin_api_keys=USER_KEY)
    )
    assert [k.scopes for k in ring.keys()] == [("read", "write", "priority", "admin")]


@pytest.mark.parametrize("presented", [None, "", "wrong-key", USER_KEY + " ", "Bearer " + USER_KEY])
def test_missing_or_unknown_keys_are_unauthorized_with_a_hint(presented):
    ring = KeyRing.from_settings(settings(api_keys=USER_KEY))
    assert ring.identify(presented) is None
    with pytest.raises(Unauthorized) as raised:
        ring.caller(presented)
    assert "Authorization: Bearer <key> or X-API-Key" in raised.value.message
    assert USER_KEY not in raised.value.message


def test_scopes_are_checked_with_a_forbidden_that_names_the_key_not_the_secret():
    reader = Caller("viewer", frozenset({"read"}))
    reader.require("read")
    assert not reader.allows("write")
    with pytest.raises(Forbidden, match="'viewer' may not submit.*'write' scope.*are read"):
        reader.require("write")
    with pytest.raises(Forbidden, match="admin"):
        reader.require("admin")


def test_presented_key_reads_bearer_then_x_api_key_then_query():
    assert presented_key("Bearer abc") == "abc"
    assert presented_key("bearer  abc ", "other") == "abc"
    assert presented_key("Basic dXNlcjpwYXNz", "xkey") == "xkey"
    assert presented_key(None, None, "from-query") == "from-query"
    assert presented_key("Bearer ", " ", "") is None
    assert presented_key() is None


# -- Hashed storage and constant-time comparison ---------------------------------------------


def test_only_digests_are_held_and_nothing_shows_a_key_or_digest(tmp_path):
    path = write_keys(tmp_path / "keys.json", {"name": "plain", "key": FILE_KEY})
    ring = KeyRing.from_settings(
        settings(api_keys=USER_KEY, admin_api_keys=ADMIN_KEY, api_keys_file=path)
    )
    held = repr(vars(ring)) + "".join(repr(vars(key)) for key in ring._keys)
    for key in (USER_KEY, ADMIN_KEY, FILE_KEY):
        assert key not in held
        assert sha(key) in held  # what is held is the digest
        shown = repr(ring) + str(ring) + repr(ring.identify(key)) + repr(ring.caller(key))
        assert key not in shown and sha(key) not in shown and sha(key)[8:] not in shown
    assert "digest" not in repr(ring._keys[0])
    assert ring.caller(FILE_KEY).name == "plain"
    assert all("digest" not in vars(info) for info in ring.keys())


def test_every_stored_digest_is_compared_wherever_the_match_is(monkeypatch):
    keys = [f"key-number-{i}-0123456789" for i in range(5)]
    ring = KeyRing.from_settings(settings(api_keys=",".join(keys)))
    calls: list[str] = []
    real = hmac.compare_digest

    def counting(a: str, b: str) -> bool:
        calls.append(b)
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    for presented in (keys[0], keys[2], keys[-1], "not-a-key"):
        calls.clear()
        ring.identify(presented)
        assert sorted(calls) == sorted(sha(k) for k in keys)


def test_new_keys_are_long_random_and_prefixed():
    first, second = new_key(), new_key()
    assert first.startswith("swd_") and len(first) >= 40 and first != second
    assert digest_of(first) == sha(first)


def test_the_same_key_twice_or_a_name_twice_is_refused():
    with pytest.raises(ValueError, match="'a' and 'b' are the same key"):
        KeyRing([ApiKey("a", sha("k"), frozenset({"read"})), ApiKey("b", sha("k"), frozenset())])
    with pytest.raises(ValueError, match="two keys are named 'a'"):
        KeyRing([ApiKey("a", sha("k"), frozenset()), ApiKey("a", sha("j"), frozenset())])


# -- The keys file ---------------------------------------------------------------------------


def test_keys_file_entries_with_scopes_limits_and_defaults(tmp_path):
    path = write_keys(
        tmp_path / "keys.json",
        {
            "name": "studio-a",
            "sha256": sha(FILE_KEY).upper(),
            "scopes": ["read", "write"],
            "requests_per_minute": 600,
            "max_waiting_jobs": 20,
        },
        {"name": "auditor", "key": "audit-key-0123456789", "scopes": ["read", "admin"]},
        {"name": "ci.bot_1", "sha256": sha("ci-key"), "requests_per_minute": 0},
    )
    ring = KeyRing.from_settings(
        settings(api_keys_file=path, rate_limit_per_minute=60, max_waiting_jobs_per_key=3)
    )
    studio = ring.caller(FILE_KEY)
    assert (studio.name, studio.requests_per_minute, studio.max_waiting_jobs) == (
        "studio-a",
        600,
        20,
    )
    auditor = ring.caller("audit-key-0123456789")
    assert auditor.admin and auditor.sees is None and not auditor.allows("write")
    assert (auditor.requests_per_minute, auditor.max_waiting_jobs) == (60, 3)  # the defaults
    bot = ring.caller("ci-key")
    assert bot.scopes == {"read", "write"}  # the default scopes
    assert (bot.requests_per_minute, bot.max_waiting_jobs) == (0, 3)  # 0: unlimited on purpose
    listed = {info.name: info for info in ring.keys()}
    assert listed["auditor"].scopes == ("read", "admin")
    assert listed["studio-a"].requests_per_minute == 600


def test_keys_file_and_env_keys_together(tmp_path):
    path = write_keys(tmp_path / "keys.json", {"name": "studio-a", "sha256": sha(FILE_KEY)})
    ring = KeyRing.from_settings(settings(api_keys=USER_KEY, api_keys_file=path))
    assert ring.caller(FILE_KEY).name == "studio-a"
    assert ring.caller(USER_KEY).name.startswith("key-")
    duplicate = write_keys(tmp_path / "dup.json", {"name": "again", "key": USER_KEY})
    with pytest.raises(ValueError, match="same key"):
        KeyRing.from_settings(settings(api_keys=USER_KEY, api_keys_file=duplicate))


def test_an_empty_keys_file_fails_closed(tmp_path):
    ring = KeyRing.from_settings(settings(api_keys_file=write_keys(tmp_path / "keys.json")))
    assert ring.enabled
    with pytest.raises(Unauthorized):
        ring.caller("anything")


FIRST = {"name": "ok", "sha256": sha(FILE_KEY)}
BAD = {"name": "bad", "sha256": "a" * 64}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {**BAD, "scopes": ["read", "delete"]},
            r"keys\[1\] \('bad'\): scopes: unknown scope 'delete'",
        ),
        ({**BAD, "scopes": []}, "scopes: scopes must not be empty"),
        ({**BAD, "sha256": "abc"}, "sha256: sha256 must be 64 hex digits"),
        ({**BAD, "sha256": "g" * 64}, "64 hex digits"),
        ({"name": "bad"}, r"keys\[1\] \('bad'\): give exactly one of sha256 \(preferred\) or key"),
        ({**BAD, "key": "also-plain-0123456789"}, "exactly one of sha256"),
        ({**BAD, "name": "has space"}, r"keys\[1\] \('has space'\): name: a name is 1 to 64"),
        ({**BAD, "name": "x" * 65}, "name: a name is 1 to 64"),
        ({**BAD, "name": ""}, "name: a name is 1 to 64"),
        ({**BAD, "name": 7}, r"keys\[1\]: name: Input should be a valid string"),
        ({**BAD, "requests_per_minute": -1}, "requests_per_minute: Input should be greater"),
        ({**BAD, "requests_per_minute": "600"}, "requests_per_minute: Input should be a valid"),
        ({**BAD, "max_waiting_jobs": True}, "max_waiting_jobs: Input should be a valid"),
        ({**BAD, "sha265": "a" * 64}, "sha265: Extra inputs are not permitted"),
        ({"name": "bad", "key": " padded "}, "key must not be empty nor start or end"),
        ({**BAD, "name": "ok"}, r"keys\[1\] \('ok'\) has the same name as keys\[0\] \('ok'\)"),
        (
            {"name": "other", "key": FILE_KEY},
            r"keys\[1\] \('other'\) has the same key as keys\[0\]",
        ),
    ],
)
def test_bad_keys_file_entries_are_refused_naming_the_file_entry_and_problem(
    tmp_path, entry, message
):
    path = write_keys(tmp_path / "keys.json", FIRST, entry)
    with pytest.raises(ValueError, match=message) as raised:
        load_keys_file(path)
    assert f"API_KEYS_FILE {path}: " in str(raised.value)
    assert "also-plain" not in str(raised.value) and "padded" not in str(raised.value)
    with pytest.raises(ValueError):
        KeyRing.from_settings(settings(api_keys_file=path))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "cannot read it: No such file"),
        ("{not json", "not valid JSON at line 1 column 2"),
        ("[]", 'must be a JSON object {"keys": \\[...\\]}'),
        ('{"key": []}', "must be a JSON object"),
        ('{"keys": [], "extra": 1}', "extra: Extra inputs are not permitted"),
        ('{"keys": ["studio-a"]}', r"keys\[0\]: Input should be a valid dictionary"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_unreadable_keys_files_are_refused(tmp_path, text, message):
    path = tmp_path / "keys.json"
    if isinstance(text, bytes):
        path.write_bytes(text)
    elif text is not None:
        path.write_text(text)
    with pytest.raises(ValueError, match=message) as raised:
        load_keys_file(path)
    assert f"API_KEYS_FILE {path}" in str(raised.value)


# -- Limits ----------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_requests_burst_to_the_limit_then_wait_for_a_token():
    clock = Clock()
    limiter = RequestLimiter(clock)
    for _ in range(60):
        limiter.check("studio-a", 60)
    with pytest.raises(RateLimited) as raised:
        limiter.check("studio-a", 60)
    assert raised.value.retry_after == 1  # one token a second
    assert "'studio-a'" in raised.value.message and "60 requests per minute" in raised.value.message
    limiter.check("studio-b", 60)  # another key has its own bucket
    clock.now += 1.0
    limiter.check("studio-a", 60)
    with pytest.raises(RateLimited):
        limiter.check("studio-a", 60)


def test_retry_after_is_whole_seconds_until_a_token_is_back():
    clock = Clock()
    limiter = RequestLimiter(clock)
    limiter.check("slow", 2)
    limiter.check("slow", 2)
    with pytest.raises(RateLimited) as raised:
        limiter.check("slow", 2)
    assert raised.value.retry_after == 30
    clock.now += 29.5
    with pytest.raises(RateLimited) as raised:
        limiter.check("slow", 2)
    assert raised.value.retry_after == 1  # half a second, rounded up
    clock.now += 0.5
    limiter.check("slow", 2)


def test_a_bucket_refills_to_its_capacity_and_no_further():
    clock = Clock()
    limiter = RequestLimiter(clock)
    limiter.check("a", 3)
    clock.now += 3600
    for _ in range(3):
        limiter.check("a", 3)
    with pytest.raises(RateLimited):
        limiter.check("a", 3)


def test_zero_is_no_limit_and_now_can_be_passed():
    limiter = RequestLimiter(clock=lambda: pytest.fail("the clock is not read"))
    for _ in range(1000):
        limiter.check("free", 0)
    limiter.check("timed", 1, now=5.0)
    with pytest.raises(RateLimited):
        limiter.check("timed", 1, now=5.0)
    limiter.check("timed", 1, now=65.0)


def test_idle_buckets_are_dropped_when_many_keys_were_seen():
    clock = Clock()
    limiter = RequestLimiter(clock, max_buckets=100)
    for i in range(100):
        limiter.check(f"old-{i}", 10)
    clock.now += 61  # every old bucket is full again: dropping it changes nothing
    limiter.check("busy", 10)
    assert len(limiter) == 1
    for i in range(150):
        limiter.check(f"new-{i}", 10)
    assert len(limiter) == 151  # all active: kept, and the next scan waits for the map to grow


def test_waiting_jobs_limit():
    waiting_jobs_exceeded(2, 3)
    waiting_jobs_exceeded(50, 0)
    with pytest.raises(RateLimited, match="3 jobs of this key are waiting.*limit is 3") as raised:
        waiting_jobs_exceeded(3, 3)
    assert raised.value.retry_after == 5


# -- sweedle keys ----------------------------------------------------------------------------


def test_keys_new_writes_a_digest_only_file_the_ring_accepts(tmp_path, capsys):
    path = tmp_path / "conf" / "keys.json"
    assert cli.main(["keys", "new", "--name", "studio-a", "--file", str(path)]) == 0
    out, err = capsys.readouterr()
    key = out.strip()
    assert key.startswith("swd_") and out.count("\n") == 1
    assert "will not be shown again" in err and f"API_KEYS_FILE={path.resolve()}" in err
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert key not in path.read_text()
    assert json.loads(path.read_text()) == {
        "keys": [{"name": "studio-a", "sha256": sha(key), "scopes": ["read", "write"]}]
    }
    argv = ["keys", "new", "--name", "ops", "--scopes", "admin,read", "--file", str(path)]
    assert cli.main([*argv, "--requests-per-minute", "600", "--max-waiting-jobs", "0"]) == 0
    admin_key = capsys.readouterr().out.strip()
    ring = KeyRing.from_settings(settings(api_keys_file=path))
    assert ring.caller(key).name == "studio-a" and not ring.caller(key).admin
    ops = ring.caller(admin_key)
    assert ops.admin and ops.scopes == {"read", "admin"} and ops.requests_per_minute == 600
    assert not list(tmp_path.glob("conf/.keys.json.*"))  # no temporary file left behind


def test_a_key_may_have_export_roots_of_its_own(tmp_path, capsys):
    path = tmp_path / "keys.json"
    argv = ["keys", "new", "--name", "alice", "--file", str(path)]
    assert cli.main([*argv, "--export-root", "/srv/alice", "--export-root", "/srv/shared"]) == 0
    alice = capsys.readouterr().out.strip()
    assert cli.main(["keys", "new", "--name", "bob", "--file", str(path)]) == 0
    bob = capsys.readouterr().out.strip()

    ring = KeyRing.from_settings(settings(api_keys_file=path))
    assert ring.caller(alice).export_roots == (Path("/srv/alice"), Path("/srv/shared"))
    assert ring.caller(bob).export_roots is None  # EXPORT_ALLOWED_ROOTS
    listed = {key.name: key.export_roots for key in ring.keys()}
    assert listed == {"alice": (Path("/srv/alice"), Path("/srv/shared")), "bob": None}
    assert cli.main([*argv[:3], "carol", *argv[4:], "--export-root", "relative/dir"]) == 1
    assert "an export root is an absolute folder" in capsys.readouterr().err


def test_keys_new_refuses_a_duplicate_name_and_bad_values(tmp_path, capsys):
    path = tmp_path / "keys.json"
    assert cli.main(["keys", "new", "--name", "a", "--file", str(path)]) == 0
    before = path.read_text()
    capsys.readouterr()
    assert cli.main(["keys", "new", "--name", "a", "--file", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "a key named 'a' already exists" in err
    assert cli.main(["keys", "new", "--name", "has space", "--file", str(path)]) == 1
    assert "a name is 1 to 64" in capsys.readouterr().err
    assert (
        cli.main(["keys", "new", "--name", "b", "--requests-per-minute", "-1", "--file", str(path)])
        == 1
    )
    assert path.read_text() == before
    with pytest.raises(SystemExit) as exited:
        cli.main(["keys", "new", "--name", "b", "--scopes", "read,delete", "--file", str(path)])
    assert exited.value.code == 2
    assert "comma-separated list of read, write, priority, admin" in capsys.readouterr().err


def test_keys_new_keeps_the_mode_and_entries_of_an_existing_file(tmp_path, capsys):
    path = write_keys(tmp_path / "keys.json", {"name": "old", "key": "old-plain-key-0123456789"})
    os.chmod(path, 0o640)
    assert cli.main(["keys", "new", "--name", "new", "--file", str(path)]) == 0
    capsys.readouterr()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [k.name for k in load_keys_file(path)] == ["old", "new"]


def test_keys_new_refuses_to_add_to_a_broken_file(tmp_path, capsys):
    path = tmp_path / "keys.json"
    path.write_text("{broken")
    assert cli.main(["keys", "new", "--name", "a", "--file", str(path)]) == 1
    assert "not valid JSON" in capsys.readouterr().err
    assert path.read_text() == "{broken"


def test_keys_list_shows_names_scopes_and_limits_never_digests(tmp_path, capsys):
    path = tmp_path / "keys.json"
    add_key_to_file(path, "studio-a", requests_per_minute=600, max_waiting_jobs=20)
    add_key_to_file(path, "ops", {"read", "write", "admin"}, requests_per_minute=0)
    add_key_to_file(path, "b", export_roots=["/srv/b", "/srv/shared"])
    assert cli.main(["keys", "list", "--file", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "NAME",
        "SCOPES",
        "REQUESTS/MIN",
        "WAITING",
        "JOBS",
        "EXPORT",
        "ROOTS",
    ]
    assert lines[1].split() == ["studio-a", "read,write", "600", "20", "default"]
    assert lines[2].split() == ["ops", "read,write,admin", "none", "default", "default"]
    assert lines[3].split() == ["b", "read,write", "default", "default", "/srv/b,/srv/shared"]
    digests = [entry["sha256"] for entry in json.loads(path.read_text())["keys"]]
    assert not any(d in "\n".join(lines) for d in digests)
    assert cli.main(["keys", "list", "--file", str(tmp_path / "missing.json")]) == 1
    assert "cannot read it" in capsys.readouterr().err


def test_keys_file_defaults_to_api_keys_file(tmp_path, monkeypatch, capsys):
    path = tmp_path / "keys.json"
    monkeypatch.setenv("API_KEYS_FILE", str(path))
    assert cli.main(["keys", "new", "--name", "a"]) == 0
    assert cli.main(["keys", "list"]) == 0
    assert "a " in capsys.readouterr().out.splitlines()[-1] + " "
    monkeypatch.delenv("API_KEYS_FILE")
    with pytest.raises(SystemExit):
        cli.main(["keys", "list"])
