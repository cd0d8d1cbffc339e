"""PNG previews of meshes rendered offscreen with OpenGL (moderngl on EGL), with a CPU fallback.

The GL path needs no display: EGL gives a headless context on any Mesa driver, llvmpipe (the CPU
rasteriser) included, so it runs on GPU-less servers too. The view matches the numpy renderer
in `sweedle_core.export.thumbnail`: a three-quarter view from the front-right and slightly above,
+Y up, the object facing +Z. The camera is fitted to the mesh's bounding sphere, so every view of
an object is framed alike. Lighting is a key and a fill light (Blinn-Phong) plus ambient, fixed to
the camera; colour comes from a base-colour texture when the mesh has UVs and an image, else from
per-vertex colours, else a neutral grey. Anti-aliasing is 2x2 supersampling: on llvmpipe it costs
less than 4x MSAA (0.10 s against 0.22 s for 500k faces at 256 px) and smooths shading too.

One GL context per process, created lazily and reused. GL contexts belong to one thread at a time,
so renders are serialised by a lock and the context is made current only for the duration of each
render. When no context can be had (no EGL libraries, no driver, GL older than 3.3) the reason is
logged once and every thumbnail comes from the numpy z-buffer instead.
"""

from __future__ import annotations

import io
import logging
import numbers
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar, cast

import numpy as np
import trimesh
from PIL import Image

from sweedle_core.export import thumbnail_shaders
from sweedle_core.export.mesh_io import seamless_normals, vertex_colors_of
from sweedle_core.export.thumbnail import render_rgba

if TYPE_CHECKING:
    import moderngl

logger = logging.getLogger(__name__)

Renderer = Literal["opengl", "numpy"]
Background = Sequence[int]
TRANSPARENT: tuple[int, int, int, int] = (0, 0, 0, 0)
MAX_SIZE = 2048

# The same three-quarter view as the numpy renderer.
_AZIMUTH_DEG = 35.0
_ELEVATION_DEG = 22.0
_FOV_DEG = 30.0
_MARGIN = 0.06  # of the image side, between the bounding sphere's outline and each edge
_SUPERSAMPLE = 2
_GREY = (0.72, 0.72, 0.72)
# Light directions in camera coordinates (right, up, toward the viewer): the key from the upper
# left like the numpy renderer's single light, the fill from the lower right.
_KEY_CAMERA = (-0.4, 0.6, 0.7)
_FILL_CAMERA = (0.7, -0.2, 0.5)
# Textures larger than this are shrunk before upload: a thumbnail cannot show more detail.
_MAX_TEXTURE = 2048

_COLOR_UNIFORM, _COLOR_VERTEX, _COLOR_TEXTURE = 0, 1, 2


@dataclass(frozen=True)
class Thumbnail:
    """A rendered preview: the PNG bytes and which renderer made them."""

    png: bytes
    renderer: Renderer


def generate_thumbnail(
    mesh: trimesh.Trimesh, size: int = 256, background: Background = TRANSPARENT
) -> bytes:
    """A ``size`` x ``size`` RGBA PNG of ``mesh``; see `make_thumbnail`."""
    return make_thumbnail(mesh, size, background).png


def make_thumbnail(
    mesh: trimesh.Trimesh, size: int = 256, background: Background = TRANSPARENT
) -> Thumbnail:
    """Render ``mesh`` to a ``size`` x ``size`` RGBA PNG over ``background`` (RGBA, 0-255,
    transparent by default), on the GPU or llvmpipe through EGL when possible, else on the CPU.

    Safe to call from several threads; GL renders run one at a time.
    """
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
        raise ValueError(f"thumbnail size must be a positive integer, got {size!r}")
    if size > MAX_SIZE:
        raise ValueError(f"thumbnail size must be at most {MAX_SIZE}, got {size}")
    bg = _background(background)

    rgba: np.ndarray | None = None
    if _BACKEND.available():
        rgba = _BACKEND.render(_Scene.of(mesh), int(size), bg)
    if rgba is None:
        return Thumbnail(_png(_over(render_rgba(mesh, int(size)), bg)), "numpy")
    return Thumbnail(_png(rgba), "opengl")


def opengl_unavailable_reason() -> str | None:
    """Why thumbnails fall back to the CPU renderer (``None`` when OpenGL works). Tries to create
    the context if no render has yet."""
    _BACKEND.available()
    return _BACKEND.reason


def _background(value: Background) -> tuple[int, int, int, int]:
    items = tuple(value)
    if len(items) != 4 or not all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) and 0 <= v <= 255 for v in items
    ):
        raise ValueError(f"background must be four integers 0-255 (RGBA), got {value!r}")
    r, g, b, a = (int(v) for v in items)
    return r, g, b, a


def _png(rgba: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgba).save(buffer, format="PNG")
    return buffer.getvalue()


def _over(rgba: np.ndarray, background: tuple[int, int, int, int]) -> np.ndarray:
    """``rgba (h, w, 4) uint8`` (straight alpha) composited over a uniform background."""
    if background[3] == 0:
        return rgba
    fg = rgba.astype(np.float32) / 255.0
    bg = np.array(background, dtype=np.float32) / 255.0
    alpha = fg[..., 3:] + bg[3] * (1.0 - fg[..., 3:])
    color = fg[..., :3] * fg[..., 3:] + bg[:3] * bg[3] * (1.0 - fg[..., 3:])
    out = np.concatenate([color / np.maximum(alpha, 1e-6), alpha], axis=-1)
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class _Scene:
    """What the GL renderer draws: the mesh recentred on its bounding sphere, as GPU-ready arrays.

    ``positions, normals (n, 3) float32``, ``indices (m, 3) uint32``, ``colors (n, 4) uint8`` or
    ``None``, ``uv (n, 2) float32`` and ``texture (h, w, 4) uint8`` (bottom row first) or
    ``None``, ``base (3,)`` the uniform colour (or the texture's tint), ``radius`` of the sphere.
    """

    positions: np.ndarray
    normals: np.ndarray
    indices: np.ndarray
    colors: np.ndarray | None
    uv: np.ndarray | None
    texture: np.ndarray | None
    base: tuple[float, float, float]
    radius: float

    @classmethod
    def of(cls, mesh: trimesh.Trimesh) -> _Scene:
        vertices = np.asarray(mesh.vertices, dtype=np.float64)
        faces = np.asarray(mesh.faces, dtype=np.int64).reshape(-1, 3)
        finite = np.asarray(np.isfinite(vertices).all(axis=1))
        if not finite.all():
            faces = faces[finite[faces].all(axis=1)]
        used = np.zeros(len(vertices), dtype=bool)
        used[faces.ravel()] = True
        # Unreferenced vertices do not count toward the framing.
        framed = vertices if used.all() else vertices[used]
        if len(framed):
            centre = (framed.min(axis=0) + framed.max(axis=0)) / 2.0
            radius = float(np.sqrt(((framed - centre) ** 2).sum(axis=1).max()))
        else:
            centre, radius = np.zeros(3), 0.0
        positions = np.where(finite[:, None], vertices - centre, 0.0).astype(np.float32)

        uv, texture, base = _texture_of(mesh)
        colors = vertex_colors_of(mesh) if texture is None else None
        return cls(
            positions=positions,
            normals=seamless_normals(positions, faces),  # UV seams do not show
            indices=faces.astype(np.uint32),
            colors=colors,
            uv=uv,
            texture=texture,
            base=base,
            radius=radius if radius > 0 else 1.0,
        )


def _texture_of(
    mesh: trimesh.Trimesh,
) -> tuple[np.ndarray | None, np.ndarray | None, tuple[float, float, float]]:
    """The mesh's UVs ``(n, 2) float32``, its base-colour image ``(h, w, 4) uint8`` flipped to GL's
    bottom-up rows, and the material's colour factor; ``(None, None, grey)`` without a texture."""
    visual = mesh.visual
    if visual is None or getattr(visual, "kind", None) != "texture":
        return None, None, _GREY
    uv = getattr(visual, "uv", None)
    material = getattr(visual, "material", None)
    image = getattr(material, "baseColorTexture", None) or getattr(material, "image", None)
    if uv is None or not isinstance(image, Image.Image):
        return None, None, _GREY
    uv = np.asarray(uv, dtype=np.float32)
    if uv.shape != (len(mesh.vertices), 2):
        return None, None, _GREY
    image = image.convert("RGBA")
    if max(image.size) > _MAX_TEXTURE:
        image.thumbnail((_MAX_TEXTURE, _MAX_TEXTURE), Image.Resampling.BILINEAR)
    # trimesh keeps glTF's UVs with v flipped (origin bottom left), GL's texture convention.
    texture = np.ascontiguousarray(np.asarray(image)[::-1])
    factor = getattr(material, "baseColorFactor", None)
    tint = (1.0, 1.0, 1.0)
    if factor is not None and len(factor) >= 3:
        scale = 255.0 if np.asarray(factor).dtype.kind in "ui" else 1.0
        tint = (float(factor[0]) / scale, float(factor[1]) / scale, float(factor[2]) / scale)
    return np.nan_to_num(uv), texture, tint


class _GLBackend:
    """The process's one GL context and shader program, created on first use; ``None`` plus a
    reason once creation has failed (never retried: the libraries will not appear later)."""

    def __init__(self) -> None:
        # Two locks, so that a thread preparing its arrays is not held up by another's render.
        self._setup_lock = threading.Lock()
        self._render_lock = threading.Lock()
        self._tried = False
        self._gl: _GL | None = None
        self.reason: str | None = None

    def available(self) -> bool:
        with self._setup_lock:
            if not self._tried:
                self._tried = True
                try:
                    self._gl = _GL.create()
                except Exception as exc:  # missing libraries or driver: any failure means CPU
                    self.reason = f"{type(exc).__name__}: {exc}".strip()
                    logger.warning(
                        "OpenGL thumbnails unavailable (%s); rendering them on the CPU instead. "
                        "On Debian or Ubuntu: apt-get install libegl1 libgl1 libegl-mesa0 "
                        "libgl1-mesa-dri",
                        self.reason,
                    )
                else:
                    logger.info("OpenGL thumbnails on %s", self._gl.renderer_name)
            return self._gl is not None

    def render(
        self, scene: _Scene, size: int, background: tuple[int, int, int, int]
    ) -> np.ndarray | None:
        with self._render_lock:
            if self._gl is None:
                return None
            return self._gl.render(scene, size, background)


class _Releasable(Protocol):
    def release(self) -> None: ...


_R = TypeVar("_R", bound=_Releasable)


class _Owned:
    """The GL objects made for one render, released together when it ends."""

    def __init__(self) -> None:
        self._objects: list[_Releasable] = []

    def __call__(self, obj: _R) -> _R:
        self._objects.append(obj)
        return obj

    def release(self) -> None:
        while self._objects:
            self._objects.pop().release()


class _GL:
    """A standalone EGL context with the thumbnail program compiled, current on no thread
    between renders."""

    def __init__(self, ctx: moderngl.Context, program: moderngl.Program) -> None:
        self.ctx = ctx
        self.program = program
        self.renderer_name = str(ctx.info.get("GL_RENDERER", "unknown"))

    @classmethod
    def create(cls) -> _GL:
        import moderngl

        # The context is current on this thread once created; leaving the `with` releases it so
        # that any worker thread can take it later. (The stubs type **kwargs as dicts.)
        ctx = moderngl.create_standalone_context(backend="egl", require=330)  # type: ignore[arg-type]
        try:
            with ctx:
                program = ctx.program(
                    vertex_shader=thumbnail_shaders.VERTEX,
                    fragment_shader=thumbnail_shaders.FRAGMENT,
                )
                return cls(ctx, program)
        except Exception:
            ctx.release()
            raise

    def render(self, scene: _Scene, size: int, background: tuple[int, int, int, int]) -> np.ndarray:
        """The picture ``(size, size, 4) uint8``, straight alpha, top row first."""
        ctx = self.ctx
        res = size * _SUPERSAMPLE
        owned = _Owned()
        with ctx:
            try:
                framebuffer = owned(
                    ctx.framebuffer(
                        color_attachments=[owned(ctx.renderbuffer((res, res), 4))],
                        depth_attachment=owned(ctx.depth_renderbuffer((res, res))),
                    )
                )
                framebuffer.use()
                ctx.viewport = (0, 0, res, res)
                # Cleared to the premultiplied background, so that averaging the supersamples
                # blends coverage over it.
                r, g, b, a = (c / 255.0 for c in background)
                framebuffer.clear(color=(r * a, g * a, b * a, a), depth=1.0)
                if len(scene.indices):
                    ctx.enable(ctx.DEPTH_TEST)
                    ctx.disable(ctx.CULL_FACE)  # two-sided: open meshes show their insides
                    self._draw(scene, owned)
                data = framebuffer.read(components=4, alignment=1)
            finally:
                owned.release()
        pixels = np.frombuffer(data, dtype=np.uint8).reshape(res, res, 4)[::-1]
        return _resolve(pixels, _SUPERSAMPLE)

    def _draw(self, scene: _Scene, owned: _Owned) -> None:
        ctx = self.ctx
        mvp, eye, right, up, toward = _camera(scene.radius)
        self._uniform("u_mvp").write(mvp.T.astype(np.float32).tobytes())
        self._uniform("u_eye").value = tuple(float(v) for v in eye)
        for name, light in (("u_key", _KEY_CAMERA), ("u_fill", _FILL_CAMERA)):
            world = light[0] * right + light[1] * up + light[2] * toward
            self._uniform(name).value = tuple(float(v) for v in world / np.linalg.norm(world))
        self._uniform("u_base").value = scene.base

        content = [
            (owned(ctx.buffer(scene.positions)), "3f", "in_position"),
            (owned(ctx.buffer(scene.normals)), "3f", "in_normal"),
        ]
        mode = _COLOR_UNIFORM
        if scene.texture is not None and scene.uv is not None:
            mode = _COLOR_TEXTURE
            content.append((owned(ctx.buffer(scene.uv)), "2f", "in_uv"))
            height, width = scene.texture.shape[:2]
            texture = owned(ctx.texture((width, height), 4, scene.texture.tobytes(), alignment=1))
            texture.build_mipmaps()
            texture.use(location=0)
            self._uniform("u_texture").value = 0
        elif scene.colors is not None:
            mode = _COLOR_VERTEX
            content.append((owned(ctx.buffer(scene.colors)), "4f1", "in_color"))
        self._uniform("u_color_mode").value = mode

        indices = owned(ctx.buffer(scene.indices))
        vao = owned(
            ctx.vertex_array(self.program, content, index_buffer=indices, index_element_size=4)
        )
        vao.render(ctx.TRIANGLES)

    def _uniform(self, name: str) -> moderngl.Uniform:
        return cast("moderngl.Uniform", self.program[name])


def _camera(radius: float) -> tuple[np.ndarray, ...]:
    """The model-view-projection matrix ``(4, 4) float64`` (row-major, column vectors) that fits
    a sphere of ``radius`` at the origin inside the margins, the eye position, and the camera's
    right, up and toward-viewer unit vectors in world coordinates."""
    az, el = np.radians(_AZIMUTH_DEG), np.radians(_ELEVATION_DEG)
    toward = np.array([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)])
    right = np.cross([0.0, 1.0, 0.0], toward)
    right /= np.linalg.norm(right)
    up = np.cross(toward, right)

    half_fov = np.radians(_FOV_DEG) / 2.0
    # The half-angle the sphere may subtend so its outline sits inside the margin.
    half_angle = np.arctan(np.tan(half_fov) * (1.0 - 2.0 * _MARGIN))
    distance = radius / np.sin(half_angle)
    eye = toward * distance
    near, far = distance - 1.05 * radius, distance + 1.05 * radius

    view = np.eye(4)
    view[0, :3], view[1, :3], view[2, :3] = right, up, toward
    view[:3, 3] = -view[:3, :3] @ eye
    f = 1.0 / np.tan(half_fov)
    projection = np.zeros((4, 4))
    projection[0, 0] = projection[1, 1] = f
    projection[2, 2] = (far + near) / (near - far)
    projection[2, 3] = 2.0 * far * near / (near - far)
    projection[3, 2] = -1.0
    return projection @ view, eye, right, up, toward


def _resolve(premultiplied: np.ndarray, k: int) -> np.ndarray:
    """Average each ``k`` x ``k`` block of ``(h, w, 4) uint8`` premultiplied pixels and return
    straight alpha ``(h / k, w / k, 4) uint8`` (what PNG stores)."""
    image = premultiplied.astype(np.float32)
    total = sum(image[i::k, j::k] for i in range(k) for j in range(k))
    mean = np.asarray(total) / np.float32(k * k)
    alpha = mean[..., 3:]
    out = np.empty(mean.shape, dtype=np.uint8)
    out[..., :3] = np.clip(np.rint(mean[..., :3] * 255.0 / np.maximum(alpha, 1e-3)), 0, 255)
    out[..., 3:] = np.clip(np.rint(alpha), 0, 255)
    return out


_BACKEND = _GLBackend()
