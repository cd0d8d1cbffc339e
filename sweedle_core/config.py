"""Sweedle's one settings object: environment variables (and `.env`) with safe defaults."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    IPvAnyNetwork,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from sweedle_core.access.keys import checked_keys
from sweedle_core.params import (
    DEFAULT_TEXTURE_SIZE,
    GuidanceScale,
    InferenceSteps,
    MaxFaces,
    NumChunks,
    OctreeResolution,
    Seed,
    TextureSize,
    default_of,
)
from sweedle_core.storage.layout import parse_s3_url

# A backend's name: one of GENERATOR_BACKENDS, or "package.module:Class" for tests/plugins.
GeneratorBackendName = str
# The built-in generators: the CPU preview, the CPU depth model, Hunyuan3D on a GPU.
GENERATOR_BACKENDS = ("silhouette", "depth", "hunyuan3d")


def env_flag(name: str) -> bool:
    """A yes/no environment variable read outside `Settings` (a library's own, such as
    HF_HUB_OFFLINE): set to 1, true, yes or on."""
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


class Settings(BaseSettings):
    """Every knob of the service. Field names are the environment variables, upper-cased."""

    # Inputs are left out of validation errors: they would print a rejected key or secret.
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    app_name: str = "Sweedle"
    debug: bool = False

    database_url: str = "sqlite+aiosqlite:///./data/sweedle.db"
    # A server database's connections, per process (each replica and the queue actor): this many
    # kept open, and this many more opened at the busiest moments.
    database_pool_size: int = Field(5, ge=1, le=1000)
    database_max_overflow: int = Field(10, ge=0, le=1000)
    # Off behind PgBouncer in transaction mode (asyncpg's prepared statements would land on
    # another server connection).
    database_prepared_statements: bool = True
    storage_dir: Path = Path("./data/storage")
    # Object storage instead of STORAGE_DIR: s3://bucket/prefix. Needed on a cluster whose
    # nodes share no folder. The S3 client's settings have the standard AWS names, read like
    # every setting here (environment, .env, the Serve config's args), so they reach every
    # replica; left empty, the client looks for them as AWS tools do (environment, profile,
    # instance role).
    storage_url: str = ""
    aws_endpoint_url: str = ""  # an S3-compatible server; empty: AWS itself
    aws_access_key_id: str = ""
    aws_secret_access_key: SecretStr = SecretStr("")
    aws_region: str = ""
    aws_allow_http: bool = False  # a plain-http endpoint (a server on loopback or in-cluster)
    # How long one storage call may take, retries included, before the job fails saying so.
    storage_timeout_s: float = Field(60.0, ge=1, le=3600)
    # Downloads answer with a redirect to a presigned URL (S3 only) instead of streaming
    # through the ingress; the URL is valid for STORAGE_PRESIGN_SECONDS.
    storage_presigned_downloads: bool = False
    storage_presign_seconds: int = Field(900, ge=10, le=7 * 24 * 3600)

    # depth on a CPU machine (configs/cpu.yaml), hunyuan3d on a GPU (serve_config.yaml). A
    # backend that cannot load hands over to the next CPU method unless this is false.
    generator_backend: GeneratorBackendName = "depth"
    generator_fallback: bool = True
    # The depth generator: a transformers depth-estimation model (hub id or local folder), how
    # deep its front relief is and how thick the back behind it, as shares of the object's
    # smaller planar extent.
    depth_model: str = "depth-anything/Depth-Anything-V2-Small-hf"
    depth_relief: float = Field(0.5, gt=0.0, le=2.0)
    depth_thickness: float = Field(0.35, gt=0.0, le=2.0)
    # Hunyuan3D: a hub id or a local folder, and the subfolder holding config.yaml + weights.
    hunyuan_model_path: str = "tencent/Hunyuan3D-2"
    hunyuan_subfolder: str = "hunyuan3d-dit-v2-0"
    # Where weights are looked for first, as upstream: <HY3DGEN_MODELS>/<model_path>/<subfolder>.
    hy3dgen_models: str = "~/.cache/hy3dgen"
    # The texture (paint) model, used when a job asks for texture=true on a CUDA device.
    hunyuan_texture_model_path: str = "tencent/Hunyuan3D-2"
    device: Literal["auto", "cuda", "cpu"] = "auto"
    low_vram_mode: bool = False
    # Take Hunyuan3D's surface on the GPU (hy3dgen's DMC extractor; needs CUDA and the `diso`
    # package) instead of by marching cubes in the CPU pool: less work for the pool, more
    # time on the GPU. Without CUDA or diso the CPU pool extracts, and the replica says why.
    gpu_surface_extraction: bool = False

    # What a request that leaves a parameter out gets; the ranges are the requests' own.
    default_inference_steps: InferenceSteps = default_of("inference_steps")
    default_guidance_scale: GuidanceScale = default_of("guidance_scale")
    default_octree_resolution: OctreeResolution = default_of("octree_resolution")
    default_seed: Seed = default_of("seed")
    default_num_chunks: NumChunks = default_of("num_chunks")
    default_max_faces: MaxFaces = default_of("max_faces")
    # The CPU stage bakes the photo into a UV texture this many pixels square (xatlas unwraps
    # the mesh; ~1 s of CPU per 40k faces at 1024, see BENCHMARKS.md).
    texture_size: TextureSize = DEFAULT_TEXTURE_SIZE

    max_upload_mb: float = Field(20.0, gt=0, le=512)
    max_image_pixels: int = Field(40_000_000, ge=1024)
    preprocess_size: int = Field(512, ge=64, le=4096)
    # rembg: a stock model name (u2net, isnet-general-use, birefnet-general, ...) or "none";
    # REMBG_MODEL_FILE runs a custom ONNX file instead, through rembg's u2net_custom session.
    rembg_model: str = "u2net"
    rembg_model_file: Path | None = None
    u2net_home: Path | None = None
    # A mirror of rembg's model releases for `sweedle models pull` (the file name is appended);
    # empty: rembg's own GitHub release URLs.
    rembg_download_url: str = ""
    thumbnail_size: int = Field(256, ge=32, le=2048)

    # The export chain run after every generation: LOD face shares (the first is the full
    # mesh), and formats written beside the GLB.
    export_lod_levels: list[float] = Field(default_factory=lambda: [1.0, 0.5, 0.25, 0.1])
    export_formats: list[str] = Field(default_factory=list)
    # Folders under which engine bundles may be written into a project on the server; empty:
    # bundles are only downloaded as zips.
    export_allowed_roots: list[Path] = Field(default_factory=list)
    # Also write model.draco.glb in the default chain (~0.3 s of CPU per 170k faces); off: it is
    # made on its first download and kept.
    export_draco: bool = False
    draco_position_bits: int = Field(14, ge=8, le=30)
    draco_compression_level: int = Field(7, ge=0, le=10)

    # Text-to-3D: a diffusers text-to-image pipeline (hub id or local folder); empty: disabled.
    text_to_image_model: str = ""
    text_to_image_negative_prompt: str = ""
    # Appended to every prompt: a plain background makes the cut-out and the shape cleaner
    # (Hunyuan3D-2's own text-to-image step adds the same kind of suffix).
    text_to_image_prompt_suffix: str = ", single object, plain white background, 3D render"
    text_to_image_steps: int = Field(25, ge=1, le=200)
    text_to_image_guidance: float = Field(5.0, ge=0.0, le=30.0)
    text_to_image_size: int = Field(1024, ge=64, le=2048)
    text_to_image_device: Literal["auto", "cuda", "cpu"] = "auto"

    # How many jobs the queue keeps in preprocessing at once; the rest wait in priority order.
    preprocess_concurrency: int = Field(4, ge=1, le=256)
    # Generated jobs sent to the export pool at once (the CPU stage and the export chain), the
    # rest waiting in priority order: what the Exporter replicas can run at once.
    export_concurrency: int = Field(2, ge=1, le=256)
    # How many times a stage (preprocessing, generation, export) runs for one job when the
    # replica or node running it dies; a stage that fails by its own error is not retried.
    stage_max_attempts: int = Field(3, ge=1, le=20)
    # How long a generator may stay silent (no progress report) before its job goes to another:
    # a killed replica or a lost node is noticed after this.
    generator_lease_s: float = Field(60.0, ge=1, le=3600)
    # How long a Generator replica being stopped (scaled down, redeployed) has to end its
    # current job (Serve's graceful shutdown timeout); past it, the job goes back to the queue.
    generator_shutdown_s: float = Field(30.0, ge=0, le=3600)
    # Generator replicas that follow the backlog (`deployments/autoscale.py`): at most this many
    # (0: a fixed number, the Serve config's), at least GENERATOR_MIN_REPLICAS (0: none while
    # idle, one starts for the next job), one per GENERATOR_JOBS_PER_REPLICA jobs that need a
    # generator; down to the minimum after GENERATOR_IDLE_S without any job.
    generator_max_replicas: int = Field(0, ge=0, le=1024)
    generator_min_replicas: int = Field(0, ge=0, le=1024)
    generator_jobs_per_replica: int = Field(1, ge=1, le=1000)
    generator_idle_s: float = Field(900.0, ge=0, le=86_400)
    # Seconds between the queue's scans of the database for jobs it does not know about.
    reconcile_interval_s: float = Field(30.0, gt=0)
    queue_actor_name: str = "sweedle_job_queue"
    # Ray resources the JobQueue actor asks for (a JSON map, e.g. {"queue_node": 1}); empty: it
    # is pinned to the head node, which an autoscaler never removes.
    job_queue_resources: dict[str, float] = Field(default_factory=dict)

    # Access control. With any key configured, every endpoint but /health needs one. API_KEYS and
    # ADMIN_API_KEYS are comma-separated keys (admin keys see every owner's assets and jobs);
    # API_KEYS_FILE is a JSON file of named keys stored as SHA-256 digests, with scopes and
    # limits (`sweedle keys new` writes one).
    api_keys: SecretStr = SecretStr("")
    admin_api_keys: SecretStr = SecretStr("")
    api_keys_file: Path | None = None
    # Per-key limits for keys that set none of their own (0: no limit), so one caller cannot
    # take the box: requests per minute, and jobs not yet at a generator.
    rate_limit_per_minute: int = Field(600, ge=0)
    max_waiting_jobs_per_key: int = Field(100, ge=0)
    # Jobs not yet at a generator for callers without a key (a service without keys).
    max_waiting_jobs_anonymous: int = Field(100, ge=0)
    # Browser origins allowed to call the API (CORS) and to change things from a page; none by
    # default (a page the server itself serves is always allowed).
    cors_origins: list[str] = Field(default_factory=list)
    # Host names the server answers to besides loopback names, IP literals and (bound beyond
    # loopback) this machine's own: the public name behind a reverse proxy, say; "*": any.
    allowed_hosts: list[str] = Field(default_factory=list)
    # Listening beyond loopback without API keys is refused at start unless this says it is
    # meant; then /health and the log warn about it.
    allow_anonymous_network: bool = False
    # Progress feeds (WebSockets) one ingress replica keeps open, in all and per caller (a key,
    # or an address without keys): each holds one of its 2000 request slots while open.
    max_feeds: int = Field(1000, ge=1)
    max_feeds_per_client: int = Field(20, ge=1)
    # Exports asked through the API (formats, LODs, bundles, thumbnails) one ingress replica
    # runs at once in the export pool; the others wait in the ingress, so the jobs' own
    # exports keep their slots.
    api_export_concurrency: int = Field(1, ge=1, le=64)
    # The largest body read for a request that is not a photo upload (JSON), in KB.
    max_request_kb: int = Field(256, ge=1, le=65536)

    # Webhooks: a POST to the job's webhook_url (or this default) when it completes, fails or is
    # cancelled, signed with HMAC-SHA256 under WEBHOOK_SECRET, retried with doubling backoff.
    webhook_url: str = ""
    webhook_secret: SecretStr = SecretStr("")
    webhook_max_attempts: int = Field(6, ge=1, le=50)
    webhook_backoff_s: float = Field(2.0, gt=0, le=3600)
    webhook_backoff_max_s: float = Field(600.0, gt=0)
    webhook_timeout_s: float = Field(10.0, gt=0, le=300)
    # Webhooks go only to public addresses (`webhooks.destinations`); these networks (CIDRs, a
    # JSON list) are allowed as well, for receivers inside the operator's own network.
    webhook_allowed_cidrs: list[IPvAnyNetwork] = Field(default_factory=list)
    # How long an Idempotency-Key is remembered.
    idempotency_ttl_hours: float = Field(24.0, gt=0)
    ray_namespace: str = "sweedle"

    @field_validator("api_keys", "admin_api_keys")
    @classmethod
    def _keys(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        checked_keys(value.get_secret_value(), str(info.field_name).upper())
        return value

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        scheme = value.split(":", 1)[0]
        if "+" not in scheme and scheme in {"sqlite", "postgresql"}:
            raise ValueError(
                f"DATABASE_URL must name an async driver, e.g. sqlite+aiosqlite:// or "
                f"postgresql+asyncpg://, not {scheme}://"
            )
        return value

    @field_validator("storage_url")
    @classmethod
    def _s3_url(cls, value: str) -> str:
        if value.strip():
            parse_s3_url(value)  # empty: files in STORAGE_DIR
        return value.strip().rstrip("/")

    @field_validator("generator_backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if value not in GENERATOR_BACKENDS and ":" not in value:
            names = ", ".join(repr(name) for name in GENERATOR_BACKENDS)
            raise ValueError(
                f"GENERATOR_BACKEND must be one of {names} or 'module:Class', not {value!r}"
            )
        return value

    @field_validator("export_lod_levels")
    @classmethod
    def _lod_levels(cls, value: list[float]) -> list[float]:
        if not value or value[0] != 1.0:
            raise ValueError("EXPORT_LOD_LEVELS must start with 1.0 (the full mesh)")
        if any(not 0.0 < v <= 1.0 for v in value) or value != sorted(value, reverse=True):
            raise ValueError("EXPORT_LOD_LEVELS must be decreasing face shares in (0, 1]")
        return value

    @model_validator(mode="after")
    def _webhooks_signed(self) -> Settings:
        if self.webhook_url and not self.webhook_secret.get_secret_value():
            raise ValueError("WEBHOOK_URL needs WEBHOOK_SECRET: every webhook is signed with it")
        return self

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)
