"""The file store as its users meet it, on both backends: a local folder and a real S3 server
(SeaweedFS, `s3_server`). Every test that takes ``storage`` runs as ``[local]`` and ``[s3]``; the
S3 runs each work under a prefix of their own in the session's one bucket."""

from __future__ import annotations

import os
import random
import socket
import uuid

import httpx
import pytest

from sweedle_core.config import Settings
from sweedle_core.errors import FileMissing, InvalidInput, StorageUnavailable
from sweedle_core.storage import LocalStorage, Storage, build_storage
from sweedle_core.storage.s3 import S3Storage

BACKENDS = ["local", "s3"]
FAILING_TIMEOUT_S = 3  # stores that cannot work must say so quickly
ESCAPING_KEYS = ["../x", "a/../../x", "/abs", "a//b", "a/./b", "", "a\\..\\x"]


def random_bytes(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


@pytest.fixture
def s3_url(s3_server, monkeypatch) -> str:
    """The ``AWS_*`` variables point at the test server (and nothing else of AWS is set); the
    URL names a prefix no other test uses."""
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    return s3_server.url(f"tests/{uuid.uuid4().hex}")


@pytest.fixture(params=BACKENDS)
def storage(request, tmp_path) -> Storage:
    if request.param == "local":
        return LocalStorage(tmp_path / "storage")
    return S3Storage(request.getfixturevalue("s3_url"))


def test_put_then_get_returns_the_bytes_and_a_second_put_replaces_them(storage):
    storage.put("asset1/input.png", b"first version")
    assert storage.get("asset1/input.png") == b"first version"

    storage.put("asset1/input.png", b"second")
    assert storage.get("asset1/input.png") == b"second"
    assert storage.size("asset1/input.png") == len(b"second")
    assert storage.exists("asset1/input.png")


def test_a_missing_key_is_file_missing(storage):
    storage.put("asset1/input.png", b"here")

    assert not storage.exists("asset1/model.glb")
    assert not storage.exists("asset2/input.png")
    with pytest.raises(FileMissing):
        storage.get("asset1/model.glb")
    with pytest.raises(FileMissing):
        storage.size("asset1/model.glb")


@pytest.mark.parametrize("key", ESCAPING_KEYS)
def test_keys_that_are_not_plain_relative_paths_are_refused(storage, tmp_path, key):
    before = sorted(tmp_path.rglob("*"))
    calls = {
        "put": lambda: storage.put(key, b"x"),
        "get": lambda: storage.get(key),
        "exists": lambda: storage.exists(key),
        "size": lambda: storage.size(key),
        "list": lambda: storage.list(key),
        "delete_prefix": lambda: storage.delete_prefix(key),
    }
    for name, call in calls.items():
        with pytest.raises(InvalidInput):
            call()
            pytest.fail(f"{name}({key!r}) was accepted")
    assert sorted(tmp_path.rglob("*")) == before


def test_a_local_link_out_of_the_root_is_not_followed(tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_bytes(b"not yours")
    storage = LocalStorage(tmp_path / "storage")
    storage.put("asset1/input.png", b"x")
    (tmp_path / "storage" / "asset1" / "link").symlink_to(outside)

    with pytest.raises(FileMissing):
        storage.get("asset1/link")
    with pytest.raises(FileMissing):
        storage.put("asset1/link", b"overwritten")
    assert outside.read_bytes() == b"not yours"


def test_a_large_file_round_trips_through_put_file(storage, tmp_path):
    data = random_bytes(8 * 1024 * 1024 + 5)  # beyond one S3 part: a multipart upload
    source = tmp_path / "model.glb"
    source.write_bytes(data)

    storage.put_file("asset1/model.glb", source)

    assert storage.size("asset1/model.glb") == len(data)
    assert storage.get("asset1/model.glb") == data
    assert source.read_bytes() == data  # the source is left as it was


def test_put_file_reads_from_the_given_path(storage, tmp_path):
    source = tmp_path / "prepared.png"
    source.write_bytes(b"png bytes")

    storage.put_file("asset1/prepared.png", source)
    source.write_bytes(b"changed afterwards")

    assert storage.get("asset1/prepared.png") == b"png bytes"


def test_list_gives_exactly_the_keys_of_one_asset_sorted(storage):
    keys = [
        "asset1/lods/lod1.glb",
        "asset1/input.png",
        "asset1/lods.zip",
        "asset1/model.glb",
        "asset10/input.png",
        "asset2/input.png",
    ]
    for key in keys:
        storage.put(key, key.encode())

    assert storage.list("asset1") == sorted(k for k in keys if k.startswith("asset1/"))
    assert storage.list("asset1/lods") == ["asset1/lods/lod1.glb"]
    assert storage.list("asset3") == []


def test_delete_prefix_removes_one_asset_and_leaves_its_neighbour(storage):
    for key in ["asset1/input.png", "asset1/lods/lod1.glb", "asset10/input.png"]:
        storage.put(key, b"x")

    storage.delete_prefix("asset1")

    assert storage.list("asset1") == []
    assert not storage.exists("asset1/input.png")
    assert storage.list("asset10") == ["asset10/input.png"]
    assert storage.get("asset10/input.png") == b"x"


def test_deleting_what_is_not_there_is_fine(storage):
    storage.delete_prefix("asset1")
    storage.put("asset1/input.png", b"x")
    storage.delete_prefix("asset1")
    storage.delete_prefix("asset1")

    assert storage.list("asset1") == []


def test_local_file_is_a_real_file_with_the_bytes(storage):
    data = random_bytes(70_000)
    storage.put("asset1/raw_mesh.npz", data)

    with storage.local_file("asset1/raw_mesh.npz") as path:
        assert path.is_file()
        assert path.read_bytes() == data


def test_local_file_of_a_missing_key_is_file_missing(storage):
    with pytest.raises(FileMissing), storage.local_file("asset1/raw_mesh.npz"):
        pytest.fail("the block ran without a file")


def test_what_a_workspace_holds_is_stored_under_its_prefix(storage):
    with storage.workspace("asset1") as folder:
        (folder / "model.glb").write_bytes(b"glb")
        (folder / "lods").mkdir()
        (folder / "lods" / "lod1.glb").write_bytes(b"lod1")

    assert storage.list("asset1") == ["asset1/lods/lod1.glb", "asset1/model.glb"]
    assert storage.get("asset1/model.glb") == b"glb"
    assert storage.get("asset1/lods/lod1.glb") == b"lod1"


def test_a_workspace_whose_block_fails_raises_and_stores_nothing_on_s3(storage):
    with pytest.raises(RuntimeError, match="export broke"), storage.workspace("asset1") as folder:
        (folder / "model.glb").write_bytes(b"half done")
        raise RuntimeError("export broke")

    # A local store hands out the asset's folder itself, so what was written stays (documented).
    written = ["asset1/model.glb"] if storage.backend == "local" else []
    assert storage.list("asset1") == written


async def test_stream_yields_the_whole_object_in_chunks(storage):
    data = random_bytes(3 * 1024 * 1024 + 17)
    storage.put("asset1/model.glb", data)

    size, stream = await storage.open_stream("asset1/model.glb")
    chunks = [chunk async for chunk in stream]

    assert size == len(data) and len(chunks) > 1
    assert b"".join(chunks) == data


async def test_stream_of_a_missing_key_is_file_missing(storage):
    with pytest.raises(FileMissing):
        await storage.open_stream("asset1/model.glb")


def test_a_local_store_serves_the_file_itself_and_has_no_signed_urls(tmp_path):
    storage = LocalStorage(tmp_path)
    storage.put("asset1/model.glb", b"glb")

    served = storage.served_path("asset1/model.glb")
    assert served is not None and served.read_bytes() == b"glb"
    assert storage.served_path("asset1/missing.glb") is None
    assert storage.presigned_url("asset1/model.glb", 60) is None


def test_a_presigned_url_reads_the_object_without_credentials(s3_url):
    storage = S3Storage(s3_url)
    data = random_bytes(50_000)
    storage.put("asset1/model.glb", data)

    url = storage.presigned_url("asset1/model.glb", 60)

    assert url is not None
    assert storage.served_path("asset1/model.glb") is None
    signed = httpx.get(url)
    assert signed.status_code == 200
    assert signed.content == data
    assert httpx.get(url.split("?", 1)[0]).status_code == 403  # the signature is what admits


def test_check_passes_for_a_usable_store(storage):
    storage.check()


def test_check_of_a_missing_bucket_names_the_bucket(s3_url):
    url = f"s3://no-such-bucket-{uuid.uuid4().hex[:12]}/sweedle"
    storage = S3Storage(url, timeout_s=FAILING_TIMEOUT_S)

    with pytest.raises(StorageUnavailable, match="bucket does not exist") as raised:
        storage.check()
    assert url in str(raised.value)


def test_a_write_to_a_missing_bucket_names_the_bucket(s3_url):
    storage = S3Storage(f"s3://no-such-bucket-{uuid.uuid4().hex[:12]}", timeout_s=3)

    with pytest.raises(StorageUnavailable, match="bucket does not exist"):
        storage.put("asset1/input.png", b"x")


@pytest.mark.parametrize("variable", ["AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"])
def test_refused_credentials_are_named(s3_url, monkeypatch, variable):
    monkeypatch.setenv(variable, "NOTTHEKEY0123456789")
    storage = S3Storage(s3_url, timeout_s=FAILING_TIMEOUT_S)

    with pytest.raises(StorageUnavailable, match="credentials were refused") as raised:
        storage.check()
    assert variable in str(raised.value)
    assert s3_url in str(raised.value)
    with pytest.raises(StorageUnavailable, match="credentials were refused"):
        storage.put("asset1/input.png", b"x")


def test_an_unreachable_endpoint_is_named(s3_url, monkeypatch):
    # A port bound but not listening refuses connections, and no one else can take it meanwhile.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{closed.getsockname()[1]}"
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        storage = S3Storage(s3_url, timeout_s=FAILING_TIMEOUT_S)

        with pytest.raises(StorageUnavailable, match="not reachable") as raised:
            storage.check()
    assert endpoint in str(raised.value)
    assert s3_url in str(raised.value)


@pytest.mark.parametrize("operation", ["put", "check"])
def test_a_local_root_that_is_a_file_is_unavailable_naming_storage_dir(tmp_path, operation):
    root = tmp_path / "storage"
    root.write_bytes(b"not a folder")
    storage = LocalStorage(root)

    with pytest.raises(StorageUnavailable, match="STORAGE_DIR") as raised:
        if operation == "put":
            storage.put("asset1/input.png", b"x")
        else:
            storage.check()
    assert str(root) in str(raised.value)
    assert root.read_bytes() == b"not a folder"


def test_the_settings_carry_the_s3_client_settings_without_the_environment(s3_server, monkeypatch):
    """As from .env or the Serve config's args: every replica gets them with the settings."""
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    settings = Settings(
        _env_file=None,
        storage_url=s3_server.url(f"settings-{uuid.uuid4().hex[:8]}"),
        aws_endpoint_url=s3_server.endpoint,
        aws_access_key_id=s3_server.access_key,
        aws_secret_access_key=s3_server.secret_key,
        aws_region="us-east-1",
        aws_allow_http=True,
    )
    storage = build_storage(settings)

    storage.put("asset1/input.png", b"from the settings")
    assert storage.get("asset1/input.png") == b"from the settings"
    assert s3_server.endpoint in storage.location
