"""Analysis of Inspect logs: tidy frames, the study's statistics, figures and a report."""

from psysim.analysis.frames import Frames, UnknownTaskError, read_frames
from psysim.analysis.report import write_report

__all__ = ["Frames", "UnknownTaskError", "read_frames", "write_report"]
