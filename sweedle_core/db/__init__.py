"""Persistence: the database is the truth; every actor is a cache of it."""
