"""One range per generation parameter, and the quality presets."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from deployments.submission import GenerationForm, TextTo3DRequest
from sweedle_core.config import Settings
from sweedle_core.params import GenerationParams, Quality
from sweedle_core.quality import PRESETS, TUNABLE

# (parameter, the lowest accepted, the highest accepted)
BOUNDS = [
    ("inference_steps", 1, 200),
    ("guidance_scale", 0.0, 30.0),
    ("octree_resolution", 16, 512),
    ("seed", 0, 2**32 - 1),
    ("num_chunks", 1000, 500_000),
    ("max_faces", 100, 5_000_000),
]


@pytest.mark.parametrize(("name", "low", "high"), BOUNDS)
def test_settings_requests_and_jobs_accept_exactly_the_same_range(
    name: str, low: float, high: float
) -> None:
    step = 1 if isinstance(low, int) else 0.5
    for value, ok in ((low, True), (high, True), (low - step, False), (high + step, False)):
        for build in (
            lambda v: Settings(**{f"default_{name}": v}),
            lambda v: GenerationForm(**{name: v}),
            lambda v: TextTo3DRequest(prompt="a cup", **{name: v}),
            lambda v: GenerationParams(**{name: v}),
        ):
            if ok:
                build(value)
            else:
                with pytest.raises(ValidationError):
                    build(value)


def test_a_server_default_the_requests_would_refuse_is_refused_at_start() -> None:
    """Once, a default of 768 was accepted and made every request that left it out a 422."""
    with pytest.raises(ValidationError, match="default_octree_resolution"):
        Settings(default_octree_resolution=768)


def test_the_openapi_schema_states_the_same_bounds() -> None:
    app = FastAPI()

    @app.post("/t")
    def take(body: TextTo3DRequest) -> None: ...

    schema = app.openapi()["components"]["schemas"]["TextTo3DRequest"]["properties"]
    for name, low, high in BOUNDS:
        ranged = next(s for s in schema[name]["anyOf"] if s.get("type") != "null")
        assert (ranged["minimum"], ranged["maximum"]) == (low, high), name
    quality = app.openapi()["components"]["schemas"]["Quality"]
    assert set(quality["enum"]) == {"fast", "standard", "high"}


def test_an_option_left_out_takes_the_servers_default() -> None:
    settings = Settings(default_octree_resolution=384, default_inference_steps=12)
    params = GenerationForm().params(settings)
    assert (params.octree_resolution, params.inference_steps) == (384, 12)
    assert params.quality is None and not params.fast_decoding


@pytest.mark.parametrize("quality", list(Quality))
def test_a_preset_sets_steps_octree_guidance_and_decoding(quality: Quality) -> None:
    params = GenerationForm(quality=quality).params(
        Settings(hunyuan_subfolder="hunyuan3d-dit-v2-0")
    )
    preset = PRESETS[quality]
    assert params.inference_steps == preset.inference_steps
    assert params.octree_resolution == preset.octree_resolution
    assert params.guidance_scale == preset.guidance_scale
    assert params.fast_decoding is preset.fast_decoding
    assert params.quality is quality


def test_presets_rise_in_cost_and_turbo_weights_get_fewer_steps() -> None:
    fast, standard, high = (PRESETS[q] for q in (Quality.FAST, Quality.STANDARD, Quality.HIGH))
    assert fast.inference_steps < standard.inference_steps < high.inference_steps
    assert fast.octree_resolution < standard.octree_resolution < high.octree_resolution
    turbo = GenerationForm(quality="standard").params(
        Settings(hunyuan_subfolder="hunyuan3d-dit-v2-0-turbo")
    )
    assert turbo.inference_steps == PRESETS[Quality.STANDARD].turbo_steps < 30


def test_explicit_parameters_override_the_preset() -> None:
    params = GenerationForm(quality="high", octree_resolution=128, seed=7).params(Settings())
    assert params.octree_resolution == 128  # named by the request
    assert params.inference_steps == PRESETS[Quality.HIGH].inference_steps  # from the preset
    assert params.seed == 7
    assert set(TUNABLE) <= set(GenerationParams.model_fields)


def test_an_unknown_quality_is_refused() -> None:
    with pytest.raises(ValidationError, match="quality"):
        GenerationForm(quality="ultra")


def test_params_stored_as_json_read_back_the_same() -> None:
    params = GenerationForm(quality="fast").params(Settings())
    stored = params.model_dump(mode="json")
    assert stored["quality"] == "fast"
    assert GenerationParams(**stored) == params
