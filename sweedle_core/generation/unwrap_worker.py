"""xatlas's unwrap, run in a child process by `photo_texture.unwrap`.

xatlas is native code that can crash (a segmentation fault on some closed meshes: xatlas issue
#146; a 82k-face icosphere here) or run for many minutes (a 351k-face marching-cubes mesh did
not finish in 10 minutes on 2 cores), and it holds the GIL while it works. In a child process a
crash or a hang costs only the child: the parent times it out and falls back to vertex colours.

Protocol: an ``.npz`` on stdin (``vertices (n, 3) float32``, ``faces (m, 3) uint32``, scalars
``max_boundary``, ``resolution``, ``padding``), an ``.npz`` on stdout (`layout`'s arrays); on
failure a one-line reason on stderr and a non-zero exit. No pickle either way.

Run as ``python -m sweedle_core.generation.unwrap_worker``.
"""

from __future__ import annotations

import io
import sys

import numpy as np

EXIT_FAILED = 1
EXIT_MISSING = 3


def layout(
    vertices: np.ndarray, faces: np.ndarray, max_boundary: float, resolution: int, padding: int
) -> dict[str, np.ndarray]:
    """xatlas's charts of ``vertices (n, 3) float32``, ``faces (m, 3) uint32``, packed for a
    ``resolution`` px texture with ``padding`` texels around each chart, each chart's boundary
    at most ``max_boundary`` long: ``source (k,) uint32`` (the input vertex each output vertex
    copies), ``faces (m, 3) uint32``, ``uv (k, 2) float32``, and the ``charts`` and
    ``atlases`` counts. Raises ImportError without xatlas, whatever xatlas raises otherwise."""
    import xatlas

    chart_options = xatlas.ChartOptions()
    chart_options.max_boundary_length = max_boundary
    pack_options = xatlas.PackOptions()
    pack_options.resolution = resolution
    pack_options.padding = padding
    pack_options.bilinear = True
    atlas = xatlas.Atlas()
    atlas.add_mesh(np.ascontiguousarray(vertices), np.ascontiguousarray(faces))
    atlas.generate(chart_options, pack_options)
    source, new_faces, uv = atlas.get_mesh(0)
    return {
        "source": np.asarray(source),
        "faces": np.asarray(new_faces),
        "uv": np.asarray(uv),
        "charts": np.array(atlas.chart_count),
        "atlases": np.array(atlas.atlas_count),
    }


def main() -> int:
    """Read the request from stdin, write the layout to stdout; the exit status says how."""
    with np.load(io.BytesIO(sys.stdin.buffer.read()), allow_pickle=False) as request:
        arguments = (
            request["vertices"],
            request["faces"],
            float(request["max_boundary"]),
            int(request["resolution"]),
            int(request["padding"]),
        )
    try:
        arrays = layout(*arguments)
    except ImportError:
        print("xatlas is not installed (pip install xatlas)", file=sys.stderr)
        return EXIT_MISSING
    except Exception as exc:  # whatever xatlas raises, the parent falls back
        print(f"xatlas failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]  # numpy stubs
    sys.stdout.buffer.write(buffer.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
