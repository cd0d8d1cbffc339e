"""What a client may ask of one generation, validated once for every entry point.

Each tunable parameter's range is one annotated type below, used alike by `GenerationParams`,
the server's defaults in `Settings`, the form and JSON body of a submission and so the OpenAPI
schema: a default the requests would refuse cannot be configured.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

OutputFormat = Literal["glb", "gltf", "obj", "ply", "stl", "usdz"]
ExportFormat = OutputFormat

InferenceSteps = Annotated[int, Field(ge=1, le=200, description="denoising steps")]
GuidanceScale = Annotated[float, Field(ge=0.0, le=30.0, description="classifier-free guidance")]
OctreeResolution = Annotated[
    int, Field(ge=16, le=512, description="cells across the volume the surface is taken from")
]
Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]
NumChunks = Annotated[
    int,
    Field(
        ge=1000,
        le=500_000,
        description="points decoded per batch when decoding the volume: lower needs less memory",
    ),
]
MaxFaces = Annotated[int, Field(ge=100, le=5_000_000, description="face budget")]

# The side of the square UV texture the photo is baked into (a server setting, TEXTURE_SIZE,
# not a request's): powers of two suit mipmapping, but any size in range works.
MIN_TEXTURE_SIZE, MAX_TEXTURE_SIZE, DEFAULT_TEXTURE_SIZE = 64, 4096, 1024
TextureSize = Annotated[
    int,
    Field(
        ge=MIN_TEXTURE_SIZE,
        le=MAX_TEXTURE_SIZE,
        description="side in pixels of the UV texture the photo is baked into",
    ),
]


# The photos a multi-view submission may send, in Hunyuan3D-2mv's order: the front (required)
# and the views from the object's left, back and right (`generation.visual_hull` says where
# each camera stands).
VIEWS = ("front", "left", "back", "right")


class Priority(str, Enum):
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"

    @property
    def rank(self) -> int:
        """Lower runs first."""
        return _RANKS[self]


_RANKS = {Priority.HIGH: 0, Priority.NORMAL: 1, Priority.LOW: 2}


class Quality(str, Enum):
    """A preset of steps, octree resolution, guidance and decoding (`sweedle_core.quality`)."""

    FAST = "fast"
    STANDARD = "standard"
    HIGH = "high"


class GenerationParams(BaseModel):
    """Parameters of one generation; the ranges are the service's limits."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    inference_steps: InferenceSteps = 30
    guidance_scale: GuidanceScale = 5.0
    octree_resolution: OctreeResolution = 256
    seed: Seed = 1234
    num_chunks: NumChunks = 8000
    # The face budget of the generated mesh (hunyuan3d reduces to it; the CPU preview's size
    # follows octree_resolution).
    max_faces: MaxFaces = 40_000
    remove_background: bool = True
    texture: bool = False
    output_format: OutputFormat = "glb"
    # The preset the values came from (None: the server's defaults and the request's own), and
    # whether the volume is decoded with FlashVDM (hunyuan3d; the fast preset turns it on).
    quality: Quality | None = None
    fast_decoding: bool = False


def default_of(name: str) -> Any:
    """A `GenerationParams` field's default, for the server's settings to start from."""
    return GenerationParams.model_fields[name].default
