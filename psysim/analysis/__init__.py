"""Analysis of Inspect logs: tidy frames, the study's statistics, figures and a report."""

from psysim.analysis.frames import Frames, UnknownTaskError, read_frames

__all__ = ["Frames", "UnknownTaskError", "read_frames"]
