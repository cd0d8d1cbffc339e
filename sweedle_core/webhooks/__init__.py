"""Webhooks: a signed POST to a job's ``webhook_url`` when the job completes, fails or is cancelled.

``signing`` (the HMAC scheme receivers check), ``payload`` (the JSON body), ``records`` (the
delivery rows and their attempt log) and ``dispatcher`` (the HTTP sending and retrying).

Nothing is re-exported here: ``sweedle_core.db.store`` imports ``payload`` and ``records``, so this
package must not pull the dispatcher (and httpx) into every import of the store.
"""
