"""The shipped Serve configs are valid and build the app the way `serve run` does."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ray.serve._private.api import call_user_app_builder_with_args_if_necessary
from ray.serve.schema import ServeDeploySchema

from deployments.app import build_app

ROOT = Path(__file__).resolve().parents[2]


def load(config: str) -> dict:
    raw = yaml.safe_load((ROOT / config).read_text())
    ServeDeploySchema.model_validate(raw)  # what `serve run` accepts
    return raw


@pytest.mark.parametrize(
    ("config", "backend", "gpus"),
    [("serve_config.yaml", "hunyuan3d", 1), ("configs/cpu.yaml", "depth", 0)],
)
def test_config_builds_the_app_with_its_backend_and_gpus(config, backend, gpus):
    raw = load(config)
    assert raw["http_options"].get("request_timeout_s") is None, "it would cut WebSockets"
    (application,) = raw["applications"]
    deployments = {d["name"]: d for d in application["deployments"]}
    assert set(deployments) == {"Ingress", "Preprocessor", "Generator", "Exporter", "TextToImage"}
    assert deployments["Generator"]["ray_actor_options"]["num_gpus"] == gpus
    assert deployments["Ingress"]["max_ongoing_requests"] >= 500, "room for many WebSockets"
    assert "autoscaling_config" in deployments["Preprocessor"]

    app = call_user_app_builder_with_args_if_necessary(build_app, application["args"])

    ingress = app._bound_deployment
    settings = ingress.init_args[0]
    assert ingress.name == "Ingress"
    assert settings.generator_backend == backend
    assert settings.storage_dir.is_absolute()


def test_cpu_config_fits_on_two_cores():
    total = 0.0
    for deployment in load("configs/cpu.yaml")["applications"][0]["deployments"]:
        replicas = deployment.get("autoscaling_config", {}).get("min_replicas")
        total += deployment["ray_actor_options"]["num_cpus"] * (
            replicas or deployment.get("num_replicas", 1)
        )
    assert total <= 2.0
