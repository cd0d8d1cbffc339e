"""Sweedle's domain logic: everything but Ray and HTTP."""
