"""How big a study is before it runs: samples, calls, tokens, and the wall time and GPU-hours it
needs on given hardware (``psysim-paper`` prints it; ``--dry-run`` prints only it).

Tokens are estimated from the prompts themselves: every call of a course is rendered from the
shipped templates with the real persona, and a transcript of assumed reply lengths
(:class:`ReplyLengths`), then counted at about 4 characters a token (no tokenizer, no download).
Calls follow the design: per session, ``turns`` therapist and ``turns`` client turns, one rating,
one call per questionnaire, and (condition ``expert``) the Expert's feedback after every session
but the last. The chain of dependent calls of one course (the critical path) is the turns plus
one end-of-session step per session (the rating, the feedback and the questionnaires run at once).

Wall time is at least the larger of two bounds: the critical path (one course's chain at the
per-sequence speed, every course in flight at once) and the throughput bound (all tokens over
the GPUs' aggregate speed). Hardware speeds are assumptions, printed with the table.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from psysim.dialogue.transcript import Turn, format_dialogue
from psysim.inputs.personas import Persona
from psysim.prompts import prompt

CHARS_PER_TOKEN = 4
PAPER_PERSONAS = 4  # the study reproduced: 4 personas x 3 conditions x 5 runs x 6 sessions x 4 turns
PAPER_EPOCHS = 5
PAPER_SESSIONS = 6
PAPER_TURNS = 4
CACTUS_PERSONAS = 450  # CACTUS evaluation.json: 450 client setups
CONDITIONS = ("expert", "none", "generic")


def tokens(text: str) -> int:
    return max(1, len(text) // CHARS_PER_TOKEN)


@dataclass(frozen=True)
class ReplyLengths:
    """Assumed completion tokens per reply (the prompts ask for 1-5 sentences a turn, at most 200
    words of feedback, a JSON rating)."""

    turn: int = 80
    feedback: int = 260
    rating: int = 8
    questionnaire: int = 40


@dataclass(frozen=True)
class Hardware:
    """Speeds assumed for the projection (defaults: a 70B model on 4 GPUs with tensor parallelism)."""

    gpus: int = 4
    generate_tps_per_gpu: float = 625.0
    """Output tokens/s per GPU at full batch (2,500/s for a 4-GPU 70B replica)."""
    prefill_tps_per_gpu: float = 6250.0
    """Prompt tokens/s per GPU at full batch."""
    sequence_tps: float = 30.0
    """Output tokens/s of one sequence in a busy batch (the critical path's speed)."""
    prefix_cache_share: float = 0.8
    """Share of prompt tokens served from vLLM's prefix cache (each call repeats the dialogue so far)."""

    def describe(self) -> str:
        return (f"{self.gpus} GPUs, {self.generate_tps_per_gpu:,.0f} output tokens/s and "
                f"{self.prefill_tps_per_gpu:,.0f} prompt tokens/s per GPU at full batch, "
                f"{self.sequence_tps:,.0f} output tokens/s per sequence, "
                f"{self.prefix_cache_share:.0%} of prompt tokens from the prefix cache")


@dataclass(frozen=True)
class StudySize:
    label: str
    samples: int
    calls: int
    prompt_tokens: float
    completion_tokens: float
    chain_calls: int
    chain_prompt_tokens: float
    chain_completion_tokens: float

    def __add__(self, other: StudySize) -> StudySize:
        return StudySize(self.label, self.samples + other.samples, self.calls + other.calls,
                         self.prompt_tokens + other.prompt_tokens, self.completion_tokens + other.completion_tokens,
                         max(self.chain_calls, other.chain_calls),
                         max(self.chain_prompt_tokens, other.chain_prompt_tokens),
                         max(self.chain_completion_tokens, other.chain_completion_tokens))

    def scaled(self, label: str, factor: float) -> StudySize:
        """The same design with ``factor`` times the samples (the chain is unchanged)."""
        return replace(self, label=label, samples=round(self.samples * factor), calls=round(self.calls * factor),
                       prompt_tokens=self.prompt_tokens * factor, completion_tokens=self.completion_tokens * factor)

    def projection(self, hardware: Hardware) -> dict[str, float]:
        """Seconds of the two wall-time bounds, the expected wall time (their maximum) and GPU-hours."""
        uncached = 1 - hardware.prefix_cache_share
        chain = (self.chain_completion_tokens / hardware.sequence_tps
                 + self.chain_prompt_tokens * uncached / (hardware.prefill_tps_per_gpu * hardware.gpus))
        throughput = (self.completion_tokens / (hardware.generate_tps_per_gpu * hardware.gpus)
                      + self.prompt_tokens * uncached / (hardware.prefill_tps_per_gpu * hardware.gpus))
        wall = max(chain, throughput)
        return {"chain": chain, "throughput": throughput, "wall": wall, "gpu_hours": wall * hardware.gpus / 3600}


@dataclass(frozen=True)
class CourseCost:
    calls: int
    prompt_tokens: int
    completion_tokens: int
    chain_calls: int
    chain_prompt_tokens: int
    chain_completion_tokens: int


def _text(n_tokens: int, tag: str) -> str:
    return (f"{tag} " * (n_tokens * CHARS_PER_TOKEN // (len(tag) + 1) + 1))[: n_tokens * CHARS_PER_TOKEN]


def course_cost(persona: Persona, condition: str, sessions: int, turns: int, lengths: ReplyLengths = ReplyLengths(),
                questionnaires: int = 0, guidelines: str = "", generic_feedback: str = "") -> CourseCost:
    from psysim.calls.critique import load_form
    from psysim.solvers.client_simulator import client_system_prompt

    """Calls and tokens of one persona's course in one condition, from the rendered prompts."""
    calls = prompt_tokens = completion_tokens = 0
    chain_calls = chain_prompt = chain_completion = 0
    history: list[Turn] = []
    feedback: str | None = None
    rating_system = prompt("client", "rating_system", persona=prompt("client", "persona", p=persona))
    for session in range(1, sessions + 1):
        previous = [t for t in history if t.session == session - 1]
        earlier = [t for t in history if t.session < session]
        current: list[Turn] = []
        for _ in range(turns):
            therapist = (prompt("therapist", "system", session=session, previous_session=format_dialogue(previous),
                                feedback=feedback, client_name=persona.name)
                         + prompt("therapist", "session_opening", session=session) + format_dialogue(current))
            current.append(Turn(speaker="therapist", text=_text(lengths.turn, "therapist"), session=session))
            client = client_system_prompt(persona, earlier, session) + format_dialogue(current)
            current.append(Turn(speaker="client", text=_text(lengths.turn, "client"), session=session))
            for text in (therapist, client):
                calls += 1
                prompt_tokens += tokens(text)
                completion_tokens += lengths.turn
                chain_calls += 1
                chain_prompt += tokens(text)
                chain_completion += lengths.turn
        history += current
        rating = rating_system + prompt("rating", "user", transcript=format_dialogue(history), session=session,
                                        baseline=30, earlier_ratings=[])
        end = [(tokens(rating), lengths.rating)] + [(tokens(rating), lengths.questionnaire)] * questionnaires
        if condition == "expert" and session < sessions:
            expert = (prompt("expert", "system", guidelines=guidelines)
                      + prompt("expert", "user", session=session, transcript=format_dialogue(current),
                               max_words=load_form("feedback_form").max_words))
            end.append((tokens(expert), lengths.feedback))
            feedback = _text(lengths.feedback, "feedback")
        elif condition == "generic" and session < sessions:
            feedback = generic_feedback
        for p, c in end:
            calls += 1
            prompt_tokens += p
            completion_tokens += c
        slowest = max(end, key=lambda pc: pc[1])  # the end-of-session calls run at once
        chain_calls += 1
        chain_prompt += slowest[0]
        chain_completion += slowest[1]
    return CourseCost(calls, prompt_tokens, completion_tokens, chain_calls, chain_prompt, chain_completion)


def exp1_size(label: str, personas: list[Persona], n_personas: int, epochs: int, sessions: int, turns: int,
              conditions: tuple[str, ...] = CONDITIONS, lengths: ReplyLengths = ReplyLengths(),
              questionnaires: int = 0, guidelines: str = "", generic_feedback: str = "") -> StudySize:
    """Experiment 1 with ``n_personas`` personas like ``personas`` (their mean cost; more personas
    than given are projected from that mean)."""
    if not personas:
        raise ValueError("no personas to size the study from")
    per_condition = {c: [course_cost(p, c, sessions, turns, lengths, questionnaires, guidelines, generic_feedback)
                         for p in personas] for c in conditions}
    total: dict[str, float] = {"calls": 0, "prompt": 0, "completion": 0}
    chain = max((cost for costs in per_condition.values() for cost in costs), key=lambda c: c.chain_completion_tokens)
    for costs in per_condition.values():
        total["calls"] += sum(c.calls for c in costs) / len(costs)
        total["prompt"] += sum(c.prompt_tokens for c in costs) / len(costs)
        total["completion"] += sum(c.completion_tokens for c in costs) / len(costs)
    runs = n_personas * epochs
    return StudySize(label, runs * len(conditions), round(total["calls"] * runs), total["prompt"] * runs,
                     total["completion"] * runs, chain.chain_calls, chain.chain_prompt_tokens,
                     chain.chain_completion_tokens)


def exp2_size(label: str, contexts: list[str], epochs: int, lengths: ReplyLengths = ReplyLengths(),
              guidelines: str = "") -> StudySize:
    """Experiment 2: per snippet-run an LLM response and a critique (at once), a revision, and three
    ratings (at once): 6 calls, a chain of 3."""
    if not contexts:
        return StudySize(label, 0, 0, 0, 0, 0, 0, 0)
    guide = tokens(guidelines) if guidelines else 400
    prompt_tokens = completion = 0.0
    for context in contexts:
        c = tokens(context)
        prompt_tokens += (c + 150) + (c + guide + 150) + (c + guide + lengths.feedback + 200) + 3 * (c + 250)
        completion += 2 * lengths.turn + lengths.feedback + 3 * lengths.rating
    longest = max(tokens(c) for c in contexts)
    return StudySize(label, len(contexts) * epochs, 6 * len(contexts) * epochs, prompt_tokens * epochs,
                     completion * epochs, 3, 3 * longest + guide + 700, lengths.feedback + lengths.turn + lengths.rating)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _millions(value: float) -> str:
    return f"{value / 1e6:.2f} M" if value >= 1e5 else f"{value:,.0f}"


def size_table(sizes: list[StudySize], hardware: Hardware) -> str:
    """A plain-text table: one row per study size."""
    header = ["study", "samples", "calls", "prompt tokens", "completion tokens", "chain (calls)",
              "wall bound: chain", "wall bound: throughput", "expected wall", "GPU-hours"]
    rows = [header]
    for size in sizes:
        p = size.projection(hardware)
        rows.append([size.label, f"{size.samples:,}", f"{size.calls:,}", _millions(size.prompt_tokens),
                     _millions(size.completion_tokens), f"{size.chain_calls}", _duration(p["chain"]),
                     _duration(p["throughput"]), _duration(p["wall"]), f"{p['gpu_hours']:.2f}"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def describe_assumptions(lengths: ReplyLengths, hardware: Hardware) -> str:
    return (f"Assumptions: replies of {lengths.turn} tokens a turn, {lengths.feedback} a feedback, "
            f"{lengths.rating} a rating; tokens counted as {CHARS_PER_TOKEN} characters each from the rendered "
            f"prompts; {hardware.describe()}. Expected wall time is the larger bound; GPU-hours = wall x GPUs.")


def as_dict(size: StudySize, hardware: Hardware) -> dict[str, Any]:
    return {"label": size.label, "samples": size.samples, "calls": size.calls, "prompt_tokens": size.prompt_tokens,
            "completion_tokens": size.completion_tokens, "chain_calls": size.chain_calls, **size.projection(hardware)}
