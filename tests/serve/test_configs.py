"""The shipped Serve configs are valid and build the app the way `serve run` does."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ray.serve import Application
from ray.serve._private.api import call_user_app_builder_with_args_if_necessary
from ray.serve.schema import ServeDeploySchema

from deployments.app import build_app
from deployments.ingress import Ingress
from deployments.job_queue import QueueLink
from sweedle_core.config import Settings

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
    # The GPU config's generators follow the backlog, 0..4; the CPU config keeps one.
    bound = {
        arg._bound_deployment.name: arg._bound_deployment
        for arg in ingress.init_args
        if isinstance(arg, Application)
    }
    # One link to the job queue, bound once, reaches the Ingress and the Generator.
    queue = ingress.init_args[1]
    assert isinstance(queue, QueueLink)
    assert bound["Generator"].init_args == (settings, queue)
    generator = bound["Generator"]._deployment_config
    if gpus:
        scaling = generator.autoscaling_config
        assert (scaling.min_replicas, scaling.max_replicas) == (0, 4)
        assert scaling.policy.policy_function == "deployments.autoscale:BacklogPolicy"
        assert "num_replicas" not in deployments["Generator"], "it would turn autoscaling off"
    else:
        assert generator.autoscaling_config is None and generator.num_replicas == 1


def test_cpu_config_fits_on_two_cores():
    total = 0.0
    for deployment in load("configs/cpu.yaml")["applications"][0]["deployments"]:
        replicas = deployment.get("autoscaling_config", {}).get("min_replicas")
        total += deployment["ray_actor_options"]["num_cpus"] * (
            replicas or deployment.get("num_replicas", 1)
        )
    assert total <= 2.0


def test_the_kuberay_manifest_parses_and_names_only_settings_the_app_reads():
    secret, service = yaml.safe_load_all((ROOT / "configs/kuberay/rayservice.yaml").read_text())
    assert (secret["kind"], service["kind"]) == ("Secret", "RayService")
    serve_config = yaml.safe_load(service["spec"]["serveConfigV2"])
    ServeDeploySchema.model_validate(serve_config)
    (application,) = serve_config["applications"]
    assert application["import_path"] == "deployments.app:build_app"

    fields = {name.upper() for name in Settings.model_fields}
    aws = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_ENDPOINT_URL"}
    named = set(secret["stringData"])
    assert {"DATABASE_URL", "STORAGE_URL"} <= named
    assert named - fields <= aws | {"AWS_ALLOW_HTTP"}, named - fields
    assert {name.upper() for name in application["args"]["settings"]} <= fields
    Settings(**application["args"]["settings"])  # values the app accepts

    cluster = service["spec"]["rayClusterConfig"]
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    for group in groups:  # every node gets the settings from the Secret
        (container,) = group["template"]["spec"]["containers"]
        assert {"secretRef": {"name": "sweedle-settings"}} in container["envFrom"]
    gpu = next(g for g in cluster["workerGroupSpecs"] if g["groupName"] == "gpu")
    limits = gpu["template"]["spec"]["containers"][0]["resources"]["limits"]
    generator = next(d for d in application["deployments"] if d["name"] == "Generator")
    assert limits["nvidia.com/gpu"] >= generator["ray_actor_options"]["num_gpus"] == 1


@pytest.mark.parametrize("config", ["configs/cpu.yaml", "serve_config.yaml"])
def test_an_overloaded_ingress_answers_503_instead_of_queueing_for_ever(config):
    """Serve answers 503 past `max_queued_requests`; without it, requests wait for a slot
    without end (each open WebSocket holds one). The Retry-After comes from the Ingress's own
    `backpressure_config`, which the config leaves as it is (test_overload.py drives it)."""
    (ingress,) = [
        d for d in load(config)["applications"][0]["deployments"] if d["name"] == "Ingress"
    ]
    assert 0 < ingress["max_queued_requests"] < ingress["max_ongoing_requests"]
    assert "backpressure_config" not in ingress
    assert Ingress._deployment_config.backpressure_config.retry_after_s >= 1
