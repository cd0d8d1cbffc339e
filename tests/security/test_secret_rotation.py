"""A rotated WEBHOOK_SECRET takes effect on the next start: the JobQueue actor (which signs the
webhooks) is reused across deploys only while its settings are the same, secrets included."""

from __future__ import annotations

from pydantic import SecretStr

from deployments.job_queue import settings_fingerprint
from sweedle_core.config import Settings


def test_a_rotated_secret_makes_the_next_deploy_replace_the_queue() -> None:
    old = Settings(webhook_secret=SecretStr("whsec_old_secret"))
    rotated = old.model_copy(update={"webhook_secret": SecretStr("whsec_new_secret")})

    assert settings_fingerprint(old) != settings_fingerprint(rotated)
    assert settings_fingerprint(old) == settings_fingerprint(
        Settings(webhook_secret=SecretStr("whsec_old_secret"))
    )


def test_rotated_api_keys_replace_it_too() -> None:
    old = Settings(api_keys=SecretStr("swd_first_key_0123456789"))
    rotated = old.model_copy(update={"api_keys": SecretStr("swd_second_key_0123456789")})

    assert settings_fingerprint(old) != settings_fingerprint(rotated)
