"""The hand-off between a generation's two stages: what the GPU stage made, for the CPU stage.

A generator's GPU stage (`GeneratorBackend.generate_shape`) ends with the shape as data: a
volume of field values (Hunyuan3D's decoded occupancy logits), the height maps a CPU method
builds its solid from, or a mesh where the surface was already taken on the GPU. The CPU stage
(`sweedle_core.generation.finish`) turns it into the final mesh in the CPU pool: surface
extraction, clean-up, reduction to the face budget, colour. The generator's replica is free for
its next job as soon as the shape is stored.

Stored as an uncompressed ``.npz`` (no pickle): the arrays, plus ``__shape__``, the JSON of
`Shape.method`, `Shape.generator` and `Shape.values`.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_HEADER = "__shape__"


@dataclass(frozen=True)
class Shape:
    """method : which CPU stage finishes it (a name in `finish.FINISHERS`).
    generator : the backend that made it (recorded on the asset).
    arrays : the data, named as the method expects.
    values : small JSON-able facts the method needs (levels, bounds, what to colour with).
    """

    method: str
    generator: str
    arrays: dict[str, np.ndarray]
    values: dict[str, Any] = field(default_factory=dict)


def shape_bytes(shape: Shape) -> bytes:
    """``shape`` as the bytes of its ``.npz`` file."""
    header = json.dumps(
        {"method": shape.method, "generator": shape.generator, "values": shape.values}
    )
    if _HEADER in shape.arrays:
        raise ValueError(f"{_HEADER} is reserved")
    buffer = io.BytesIO()
    # Uncompressed: zlib would cost the GPU replica a second of CPU per 100 MB.
    arrays = {_HEADER: np.frombuffer(header.encode(), dtype=np.uint8), **shape.arrays}
    np.savez(buffer, **arrays)  # type: ignore[arg-type]  # numpy stubs
    return buffer.getvalue()


def read_shape(data: bytes) -> Shape:
    """A `Shape` from `shape_bytes`; ``ValueError`` when the bytes are not one."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as stored:
            header = json.loads(stored[_HEADER].tobytes().decode())
            arrays = {name: stored[name] for name in stored.files if name != _HEADER}
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(f"the stored shape is unreadable: {exc}") from exc
    return Shape(header["method"], header["generator"], arrays, header.get("values", {}))
