"""Role model calls with per-call sampling settings and a record of truncated replies.

Inspect's ``--temperature``/``--seed`` reach only the main model, so every role call here
carries its own :class:`GenerateConfig`. A call that stops for context length comes back as
``stop_reason == "model_length"`` (not an exception): it is recorded on the sample.
"""

from __future__ import annotations

import re

from inspect_ai.model import ChatMessage, GenerateConfig, ModelOutput, get_model
from pydantic import BaseModel

ROLES = ("therapist", "client", "expert")
"""The model roles; bind all three (even to one model) so the log labels every call's role."""
TRUNCATING_STOPS = ("model_length", "max_tokens")


class StopRecord(BaseModel):
    """A model call that did not end naturally."""

    role: str
    step: str
    stop_reason: str


class CallSettings(BaseModel):
    """Sampling settings shared by every role call of one sample."""

    temperature: float | None = None
    seed: int | None = None

    @classmethod
    def for_epoch(cls, temperature: float | None, seed: int | None, epoch: int) -> "CallSettings":
        """Per-epoch seed ``seed + epoch``: runs differ from each other, each is reproducible."""
        return cls(temperature=temperature, seed=None if seed is None else seed + epoch)

    def config(self, max_tokens: int | None = None, **extra: object) -> GenerateConfig:
        return GenerateConfig(
            temperature=self.temperature, seed=self.seed, max_tokens=max_tokens, **extra
        )


async def generate_reply(
    role: str,
    messages: list[ChatMessage],
    config: GenerateConfig,
    *,
    step: str,
    stops: list[StopRecord],
) -> tuple[str, ModelOutput]:
    """One reply from the model bound to ``role``; a :class:`StopRecord` if it was cut short."""
    output = await get_model(role=role).generate(messages, config=config)
    if output.stop_reason in TRUNCATING_STOPS:
        stops.append(StopRecord(role=role, step=step, stop_reason=output.stop_reason))
    return output.completion.strip(), output


def strip_speaker_label(text: str, label: str) -> str:
    """Small models sometimes prefix their own turn with ``Therapist:``; drop that label."""
    return re.sub(rf"^\s*\**{re.escape(label)}\**\s*:\s*", "", text, flags=re.IGNORECASE).strip()
