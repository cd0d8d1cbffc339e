"""Generators: a prepared image in, a mesh out, all behind one protocol."""
