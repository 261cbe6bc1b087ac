"""Shared building blocks for psychotherapy-in-silico: prompts, personas, transcripts, ratings."""
