"""The registry of report sections, in report order, keyed by the task named in each log.

Adding a task to the report: write its row builder (:mod:`psysim.analysis.frames`) and its
:class:`~psysim.analysis.section.Section`, and list the section here. A section of a further
frame read from a task's logs (``questionnaires`` from Experiment 1) is keyed by that frame's
name (``frames.EXTRA_ROW_BUILDERS``).
"""

from __future__ import annotations

from psysim.analysis import (
                             cost,
                             exp1,
                             exp2,
                             human_ratings,
                             integrity,
                             position,
                             questionnaires,
                             rater_agreement,
                             safety,
                             validity,
)
from psysim.analysis.section import Section

# `simulation_integrity` is keyed by its scorer and `cost` by its frame: their frames hold rows of every
# task; `human_ratings` by its frame, read from a psysim-rate study (--human-ratings) rather than from the logs
SECTIONS: dict[str, Section] = {
    section.task: section
    for section in (exp1.SECTION, questionnaires.SECTION, safety.SECTION, exp2.SECTION, position.SECTION,
                    validity.SECTION, safety.CHECK_SECTION, rater_agreement.SECTION, integrity.SECTION,
                    human_ratings.SECTION, cost.SECTION)
}
