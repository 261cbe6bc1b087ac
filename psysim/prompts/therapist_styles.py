"""Therapist styles of Experiment 1: the one registry from a style name to its prompt file.

``standard`` is the study's therapist. ``poor`` is a **negative control**: a deliberately poor
therapist (dismissive, lecturing, advice before listening, off-topic). A rater that measures
therapy quality must rate it lower; the report checks that (see README, "Validity"). Each style
is a prompt file in ``psysim/prompts`` with the same templates as ``therapist.yaml``'s
``system``; every style reads the condition's feedback like any other therapist.

A style changes what is being rated, so it is a design argument: runs of different styles are
never pooled into one setting (:mod:`psysim.analysis.frames`), and ``psysim-paper`` runs only
``standard`` unless asked (``--therapist-styles``).
"""

from __future__ import annotations

from psysim.inputs.input_error import TaskArgumentError

DEFAULT_STYLE = "standard"

THERAPIST_STYLES: dict[str, str] = {
    "standard": "therapist",
    "poor": "therapist_poor",
}
"""Style name -> prompt file (``psysim/prompts/<file>.yaml``) holding its ``system`` template."""

NEGATIVE_CONTROLS = ("poor",)
"""Styles the rater is expected to rate lower than :data:`DEFAULT_STYLE`."""


def style_prompt(style: str) -> str:
    """The prompt file of ``style``; ValueError naming the known styles otherwise."""
    if style not in THERAPIST_STYLES:
        raise TaskArgumentError(f"therapist must be one of {', '.join(THERAPIST_STYLES)}; got {style!r}")
    return THERAPIST_STYLES[style]
