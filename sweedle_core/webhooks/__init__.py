"""Webhooks: a signed POST to a job's ``webhook_url`` when the job completes, fails or is cancelled.

``signing`` (the HMAC scheme receivers check), ``destinations`` (where a webhook may go) and
``dispatcher`` (the HTTP sending and retrying). The body and the delivery rows are the
database's (`sweedle_core.db.webhook_payload`, `sweedle_core.db.webhook_deliveries`): they are
written in the transaction that finishes a job, so the store needs nothing of this package.
"""
