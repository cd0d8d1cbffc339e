"""What every background remover gives back, and the protocol they share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from PIL import Image


@dataclass(frozen=True)
class CutOut:
    image: Image.Image  # RGBA, the background transparent (alpha 0)
    method: str  # what cut it out, as the job records it: "grabcut", "rembg:u2net", ...


class BackgroundRemover(Protocol):
    name: str  # what /health shows: the remover, or the chain of methods it tries

    def remove(self, image: Image.Image) -> CutOut:
        """``image`` as RGBA with the background transparent, and the method that found it."""
        ...
