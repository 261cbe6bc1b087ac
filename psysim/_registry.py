"""Inspect's entry point (``[project.entry-points.inspect_ai]``): importing the tasks registers them
as ``psysim/<task>``, so ``inspect eval psysim/iterative_feedback`` works from any directory."""

# ruff: noqa: F401
from psysim.tasks.human_comparison import human_comparison
from psysim.tasks.iterative_feedback import iterative_feedback
from psysim.tasks.rater_validity import rater_validity
from psysim.tasks.safety_judge_check import safety_judge_check
from psysim.demo.model import DemoModelAPI  # the `psysim/demo` model provider (scripted, model-free)
