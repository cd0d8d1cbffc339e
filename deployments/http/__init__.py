"""Sweedle's HTTP API: a FastAPI app built from the services the Ingress holds.

Kept apart from the Ray Serve shell (`deployments/ingress.py`) so that the same app runs under
plain uvicorn too (the benchmark compares the two) and in ASGI tests.
"""
