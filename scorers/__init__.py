"""Scorers: Client-LLM ratings turned into Inspect scores."""

from psysim.scorers.client_questionnaires import client_questionnaires
from psysim.scorers.client_satisfaction import client_satisfaction
from psysim.scorers.simulation_integrity import simulation_integrity

__all__ = ["client_questionnaires", "client_satisfaction", "simulation_integrity"]
