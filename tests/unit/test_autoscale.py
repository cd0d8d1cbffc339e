"""The Generator's autoscaling policy, built and called the way Serve's controller does it.

Serve's custom autoscaling policies are experimental in the Ray we pin: these tests build the
policy from the config through Serve's own code and call it with Serve's own context, so they
fail if that API moves.
"""

from __future__ import annotations

from typing import Any

from ray.serve._private.autoscaling_state import _resolve_policy_callable
from ray.serve._private.common import DeploymentID
from ray.serve.config import AutoscalingConfig, AutoscalingContext

from deployments.autoscale import BacklogPolicy, backlog_autoscaling
from sweedle_core.config import Settings


class Told(BacklogPolicy):
    """The policy with the queue's answer and the clock set by the test."""

    demand: int | None = None
    now = 1000.0

    def _read(self) -> int | None:
        return self.demand

    def _now(self) -> float:  # type: ignore[override]
        return self.now


def context(target: int, state: dict[str, Any] | None = None) -> AutoscalingContext:
    return AutoscalingContext(
        deployment_id=DeploymentID(name="Generator", app_name="sweedle"),
        deployment_name="Generator",
        app_name="sweedle",
        current_num_replicas=target,
        target_num_replicas=target,
        running_replicas=[],
        total_num_requests=0.0,
        total_queued_requests=0.0,
        aggregated_metrics={},
        raw_metrics={},
        capacity_adjusted_min_replicas=0,
        capacity_adjusted_max_replicas=4,
        policy_state=state or {},
        last_scale_up_time=None,
        last_scale_down_time=None,
        current_time=None,
        config=None,
    )


def settings(**fields: Any) -> Settings:
    return Settings(_env_file=None, generator_max_replicas=4, **fields)


def test_serve_builds_the_policy_from_the_settings():
    config = AutoscalingConfig(**backlog_autoscaling(settings(generator_jobs_per_replica=2)))
    assert (config.min_replicas, config.initial_replicas, config.max_replicas) == (0, 0, 4)
    assert config.upscale_delay_s == config.downscale_delay_s == 0  # the policy has its own
    policy = _resolve_policy_callable(config.policy)
    assert isinstance(policy, BacklogPolicy)
    assert (policy.queue_actor_name, policy.jobs_per_replica, policy.idle_s) == (
        "sweedle_job_queue",
        2,
        900.0,
    )


def test_replicas_follow_the_backlog_and_fall_to_zero_only_after_the_idle_time():
    policy = Told("q", "sweedle", jobs_per_replica=2, idle_s=60.0)
    assert policy(context(1)) == (1, {})  # the queue has not answered: nothing changes
    policy.demand = 5
    replicas, state = policy(context(0))
    assert (replicas, state["gpu_demand"]) == (3, 5)  # one per two jobs, rounded up
    policy.demand = 1
    assert policy(context(3))[0] == 1  # shrinks as it drains
    policy.demand = 0
    policy.now += 59.0
    assert policy(context(1))[0] == 1  # idle, but not long enough: one stays
    policy.now += 2.0
    assert policy(context(1))[0] == 0
    policy.demand = 1
    assert policy(context(0))[0] == 1  # a new job starts one
