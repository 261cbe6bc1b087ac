"""Scorers: Client-LLM ratings turned into Inspect scores."""

from scorers.client_questionnaires import client_questionnaires
from scorers.client_satisfaction import client_satisfaction

__all__ = ["client_questionnaires", "client_satisfaction"]
