"""psychotherapy-in-silico: Therapist, Client and Expert LLMs in Inspect AI.

Layout (one installed namespace):
    psysim.tasks      Inspect tasks (registered as ``psysim/<task>``)
    psysim.solvers    the therapy course, the agents, Experiment 2's candidates
    psysim.scorers    Client-LLM ratings, questionnaires, integrity and safety scores
    psysim.calls      model calls: per-call settings, re-asking, failed replies, strict parsing, ratings
    psysim.inputs     personas, transcripts, snippets, data files, checks of user input
    psysim.dialogue   the canonical dialogue and its integrity check
    psysim.prompts    versioned prompt files and their loader
    psysim.analysis   ``psysim-report``: statistics and figures from Inspect logs
    psysim.study      ``psysim-paper``, shards, log series and status, load balancing
    psysim.offline    the offline real model (llama.cpp) and ``psysim-offline``
    psysim.questionnaires, psysim.safety, psysim.rating_app   the instruments, safety rubric, raters' app
    psysim.testing    scripted and fault-injecting OpenAI-compatible servers for tests
"""

from pathlib import Path as _Path

from psysim._checkout import warn_if_other_checkout as _warn_if_other_checkout

_warn_if_other_checkout(_Path(__file__).parent)
