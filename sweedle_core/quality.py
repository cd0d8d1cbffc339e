"""Quality presets: the ``quality`` option of a submission, turned into generation parameters.

The values follow upstream Hunyuan3D-2's own app: its generation modes (Turbo 5 steps, Fast 10,
Standard 30) and decoding modes (octree 196, 256, 384), guidance 5.0 throughout. ``fast``
decodes the volume with FlashVDM where the model has it (hunyuan3d), which upstream measures at
more than 45x faster volume decoding; turbo (step-distilled) weights get their own, smaller
step counts. A parameter the request names itself always wins over its preset, and one neither
names takes the server's default (``DEFAULT_*``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sweedle_core.params import GenerationParams, Quality

# The parameters a request may set; each has a server default named ``default_<name>``.
TUNABLE = (
    "inference_steps",
    "guidance_scale",
    "octree_resolution",
    "seed",
    "num_chunks",
    "max_faces",
)


@dataclass(frozen=True)
class Preset:
    inference_steps: int
    turbo_steps: int  # for step-distilled (turbo) weights
    octree_resolution: int
    guidance_scale: float
    fast_decoding: bool

    def values(self, turbo_weights: bool) -> dict[str, Any]:
        return {
            "inference_steps": self.turbo_steps if turbo_weights else self.inference_steps,
            "octree_resolution": self.octree_resolution,
            "guidance_scale": self.guidance_scale,
            "fast_decoding": self.fast_decoding,
        }


PRESETS: dict[Quality, Preset] = {
    Quality.FAST: Preset(10, 5, 196, 5.0, fast_decoding=True),
    Quality.STANDARD: Preset(30, 5, 256, 5.0, fast_decoding=False),
    Quality.HIGH: Preset(50, 10, 384, 5.0, fast_decoding=False),
}


def is_turbo(subfolder: str) -> bool:
    """Whether Hunyuan3D weights are step-distilled (``hunyuan3d-dit-v2-0-turbo`` and kin)."""
    return "turbo" in subfolder.lower()


def resolve_params(
    chosen: Mapping[str, Any],
    quality: Quality | None,
    defaults: Mapping[str, Any],
    turbo_weights: bool = False,
    **fixed: Any,
) -> GenerationParams:
    """The parameters of one job.

    chosen : the request's own values for `TUNABLE` names (None or absent: not chosen).
    defaults : the server's value for every `TUNABLE` name.
    fixed : the request's other options (texture, output_format, ...), passed through.
    """
    values = {name: defaults[name] for name in TUNABLE}
    if quality is not None:
        values.update(PRESETS[quality].values(turbo_weights))
    values.update({k: v for k, v in chosen.items() if k in TUNABLE and v is not None})
    return GenerationParams(**values, quality=quality, **fixed)
