"""Thin Ray Serve shells around sweedle_core: one module per deployment, bound in app.py."""
