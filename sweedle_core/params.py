"""What a client may ask of one generation, validated once for every entry point."""

from __future__ import annotations

from enum import Enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

OutputFormat = Literal["glb", "gltf", "obj", "ply", "stl", "usdz"]
ExportFormat = OutputFormat


class Priority(str, Enum):
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"

    @property
    def rank(self) -> int:
        """Lower runs first."""
        return _RANKS[self]


_RANKS = {Priority.HIGH: 0, Priority.NORMAL: 1, Priority.LOW: 2}


class GenerationParams(BaseModel):
    """Parameters of one generation; the ranges are the service's limits."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    inference_steps: int = Field(30, ge=1, le=200)
    guidance_scale: float = Field(5.0, ge=0.0, le=30.0)
    octree_resolution: int = Field(256, ge=16, le=512)
    seed: int = Field(1234, ge=0, le=2**32 - 1)
    # Points decoded per batch when extracting the surface: lower needs less memory.
    num_chunks: int = Field(8000, ge=1000, le=500_000)
    # The face budget of the generated mesh (hunyuan3d reduces to it; the CPU preview's size
    # follows octree_resolution).
    max_faces: int = Field(40_000, ge=100, le=5_000_000)
    remove_background: bool = True
    texture: bool = False
    output_format: OutputFormat = "glb"
