"""Deterministic generator of a Sparkify-shaped lake (``song_data`` and ``log_data``)."""

from sparkify.datagen.generate import GeneratedLake, generate

__all__ = ["GeneratedLake", "generate"]
