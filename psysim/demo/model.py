"""``psysim/demo``: a model-free Inspect model provider with scripted replies and a built-in effect.

DEMO, SCRIPTED NUMBERS: nothing this model says is a result. It exists to try the whole pipeline
(tasks, integrity check, report) without a GPU, a server or a download.

Every reply is derived from the prompt (and the call's seed), never from call order, so samples
run concurrently and a rerun gives the same logs. The role is read from the prompt:

* **Therapist** (Experiment 1 turn): three sentences composed from fixed pools, indexed by the
  turn's place in the course so that no line repeats within a course. When its system prompt
  carries supervisor feedback written by the demo Expert, the third sentence is a *specific*
  one (:data:`SPECIFIC`); with other feedback (the ``generic`` condition) an *attentive* one
  (:data:`ATTENTIVE`); without feedback a neutral one.
* **Client** (turn): two or three sentences from its own pools; no therapist phrases.
* **Expert** (feedback or critique): two recommendations from :data:`EXPERT_POINTS`.
* **Client rating** (Experiment 1), the built-in effect::

      rating = 35 + persona offset + (3 + run slope) * (k - 1)
               + 5 * (sessions so far with a specific therapist sentence)
               + 1 * (sessions so far with an attentive therapist sentence) + noise

  so the slope per session is 3 without feedback, 4 with generic feedback and 8 with the Expert's
  (from session 2 on): **expert vs none, slope: +5 points per session; generic vs none: +1**.
  Persona offset: -5..5 (per persona), run slope: -1..1 (per persona-run), noise: -4..4 (per
  rating), all from hashes of the prompt and the run's seed.
* **Client rating** (Experiment 2): ``50 + 5 * specific + 3 * attentive sentences in the
  response + snippet offset (-5..5) + noise (-4..4)``: the demo's LLM response carries one
  attentive sentence, its revision two specific ones, a human response none, so **revised vs
  human: +10; LLM vs human: +3**.

Every reply has ``stop_reason="stop"`` and token usage counted from the text (about 4 characters
a token), so Inspect never downloads a tokenizer.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from inspect_ai.model import (
    ChatMessage,
    GenerateConfig,
    ModelAPI,
    ModelOutput,
    ModelUsage,
    modelapi,
)
from inspect_ai.tool import ToolChoice, ToolInfo

from psysim.calls.generation import REASK_SEED_STEP, SESSION_SEED_STEP
from psysim.demo import DEMO_PROVIDER

# The built-in effects (documented above and in the README; the demo's test checks that the
# report's confidence interval covers them).
BASE_RATING = 35
BASE_SLOPE = 3
SPECIFIC_GAIN = 5
ATTENTIVE_GAIN = 1
EXP2_BASE = 50
EXP2_SPECIFIC = 5
EXP2_ATTENTIVE = 3
EXPERT_VS_NONE_SLOPE = SPECIFIC_GAIN
"""Experiment 1's built-in effect: expert minus none, change per session (rating points)."""

THERAPIST_OPENERS = [
    "I have been thinking about what you described, and I am glad you came in today.",
    "It sounds like the last few days have asked a lot of you.",
    "I can hear how tiring it has been to carry all of this on your own.",
    "You mentioned something a moment ago that seemed to matter a great deal to you.",
    "There is a lot in what you just said, and I want to take it slowly.",
    "I notice your voice changed when you spoke about your family just now.",
    "That sounds like a hard week, and you still found a way to get here.",
    "I appreciate how openly you are describing something so personal.",
    "When you talk about work, your shoulders seem to tighten a little.",
    "It makes sense that this has been on your mind so much lately.",
    "Part of you seems to want things to change, and part of you seems unsure.",
    "You have tried several things already, which says something about your determination.",
    "I wonder whether the evenings are the hardest part of the day for you.",
    "It took courage to say that out loud, even in a room like this one.",
    "From what you describe, the pressure seems to come from several directions at once.",
    "Some of what you said sounded like frustration, and some of it sounded like sadness.",
    "You seem to hold yourself to a very high standard in almost everything.",
    "I am struck by how much you care about the people around you.",
    "It sounds as if the quiet moments are when the worry grows loudest.",
    "You described that conversation in a lot of detail, which tells me it stayed with you.",
    "I can imagine that feeling stuck like this is exhausting day after day.",
    "Listening to you, I get a sense of someone who rarely gets a break.",
    "There seems to be a lot of disappointment in how things turned out.",
    "You said that almost in passing, but it sounded important.",
    "It sounds like you have been trying to manage this mostly in silence.",
    "I hear both hope and doubt in the way you put that.",
    "That reaction seems very understandable given everything going on.",
    "You have been honest about the parts that are hard to admit, and that matters.",
    "It seems the change in routine has unsettled more than just your schedule.",
    "When you describe the mornings, it sounds like dread sets in early.",
    "I get the sense that you have not had much room to think about yourself.",
]
THERAPIST_CORES = [
    "What do you notice in your body when that happens?",
    "How do you usually get through the moments when it feels heaviest?",
    "What would a slightly better week look like to you?",
    "Who in your life knows how much you are struggling right now?",
    "When was the last time you felt even a little more at ease?",
    "What goes through your mind just before you decide to stay in?",
    "How does this compare with how things were a year ago?",
    "What do you tell yourself when things do not go as planned?",
    "Which part of this feels most urgent to you today?",
    "What has helped, even briefly, when you felt like this before?",
    "How do you think a close friend would see this situation?",
    "What makes it hard to ask for support from the people nearby?",
    "If the worry could speak, what do you think it would be warning you about?",
    "What would you like to be different by the time we finish working together?",
    "How much sleep have you been getting on the nights before work?",
    "What does a typical evening look like for you at the moment?",
    "Where do you think that expectation of yourself first came from?",
    "What happens between the two of you after an argument like that?",
    "How do you know when you have reached your limit?",
    "Which of those responsibilities could someone else share with you?",
    "What do you miss most about the way things used to be?",
    "How have you been eating and moving during these busy weeks?",
    "What is one thing you did recently that you felt good about?",
    "What would it mean for you if this did not get better?",
    "How do the weekends differ from the working days for you?",
    "Who do you find it easiest to be yourself around?",
    "What do you think keeps the cycle going, from what you have seen?",
    "How did you manage to get through the last difficult stretch?",
    "What would you want me to understand that I might be missing?",
]
THERAPIST_NEUTRAL = [
    "Take your time with that.",
    "We can stay with this for a while.",
    "There is no rush to have an answer.",
    "I am listening.",
    "Whatever comes to mind is fine.",
    "We can come back to the rest later.",
    "Say as much or as little as you like.",
    "That is worth thinking about.",
    "We have time for it today.",
    "Go on whenever you are ready.",
    "It is fine not to be sure yet.",
]
SPECIFIC = [
    "Could we agree on one small, concrete step you will try before we meet again?",
    "Let me check that we are working toward the goal that matters most to you.",
    "I want to make sure this plan fits your week, so tell me what would get in the way.",
    "Shall we write down the one change you chose, so we can review it together next time?",
    "Before we go on, tell me whether what we are doing here feels useful to you.",
    "It would help me to hear which part of our plan feels realistic and which does not.",
    "We could break that goal into a first step that takes less than ten minutes a day.",
    "I would like us to decide together what we focus on for the rest of today.",
    "How confident are you, from one to ten, that this step will work for you?",
    "Let us pick the one situation this week where you will try the new approach.",
    "Tell me if I have understood your goal correctly, and correct me where I have not.",
    "We agreed last time on a step; let us look honestly at how it went.",
    "What would make it easier for you to follow through on the plan we made?",
]
ATTENTIVE = [
    "I want to pay closer attention to what you need from me here.",
    "Tell me if I am missing something that matters to you.",
    "I am trying to follow what is most important to you right now.",
    "Let me slow down and make sure I hear what you need.",
    "I want to be sure I am attending to your needs today.",
    "Please tell me what would be most helpful for you to talk about.",
    "I would like to keep our attention on what you need most.",
]
CLIENT_OPENERS = [
    "Honestly, it has been a rough stretch at home and at work.",
    "I keep telling myself it is not a big deal, but it keeps coming back.",
    "Some days are fine, and then something small sets me off again.",
    "I did not sleep well again, so I am a bit foggy today.",
    "My sister called on Sunday and it stirred up a lot of old stuff.",
    "I tried going for walks like I planned, but only managed twice.",
    "Work has been relentless, and I feel behind on everything.",
    "I felt a little lighter after last time, at least for a day or two.",
    "I am not sure where to start, there is so much going on.",
    "It is hard to explain, it is more of a constant low hum of worry.",
    "I snapped at my partner over nothing and felt awful afterwards.",
    "The weekend was quiet, maybe too quiet, I just stayed in bed.",
    "I noticed I was avoiding my phone again, especially messages from my boss.",
    "I went to the gathering in the end, but left after half an hour.",
    "Mornings are the worst, I lie there dreading the day ahead.",
    "I have been thinking about what we said, and some of it stuck with me.",
    "My manager praised my report, and somehow that made me more anxious.",
    "I cancelled plans with friends again, and then I felt guilty all evening.",
    "It has been an up and down week, more down than up if I am honest.",
    "I keep replaying an argument from last week in my head.",
    "I started writing things down at night, which helped a little.",
    "My mother is unwell again, and I am the one everybody calls.",
    "I had a good day on Thursday, and I could not work out why.",
    "I feel embarrassed admitting this, but I cried in the car park.",
    "I am tired of feeling like this, I just want to feel normal again.",
    "The new schedule at work has thrown everything off balance for me.",
    "I ate dinner standing up most nights, barely noticing it.",
    "I called my old friend, which I had been putting off for months.",
    "There was a moment on the train where my chest went tight again.",
    "I did the breathing thing once and it helped more than I expected.",
    "I told my partner a little about coming here, which felt strange.",
]
CLIENT_CORES = [
    "I guess I am scared that nothing will really change.",
    "Part of me thinks I should be able to handle this alone.",
    "I do not really know what I want anymore.",
    "It feels like everyone else copes better than I do.",
    "Maybe I expect too much from myself, I do not know.",
    "When I stop being busy, the sad feeling catches up with me.",
    "I find it hard to say no when people ask things of me.",
    "I worry that if I slow down, everything will fall apart.",
    "Sometimes I feel like a stranger in my own house.",
    "I would like to feel more in control of my days.",
    "I think I have been running on empty for a long time.",
    "It is easier to talk about other people than about me.",
    "I keep waiting for the right moment to deal with it.",
    "Saying it out loud makes it sound smaller than it feels.",
    "I am not used to anyone asking how I am doing.",
    "I want my evenings back, that is the simplest way to put it.",
    "I think the anger is really tiredness underneath.",
    "I would like to sleep through the night for once.",
    "I am afraid of disappointing people who rely on me.",
    "I miss the person I was a few years ago.",
    "I know what I should do, I just cannot make myself do it.",
    "It helps to have a place where I can be honest.",
    "I feel torn between what my family wants and what I want.",
]
EXPERT_POINTS = [
    "Agree with the client on one concrete, small step to try before the next session.",
    "Check explicitly that the goals you pursue are the goals the client holds.",
    "Ask how realistic the plan is for the client's week and adjust it together.",
    "Write down the chosen change with the client so it can be reviewed next time.",
    "Ask the client for feedback on whether the session feels useful.",
    "Break large goals into first steps the client can manage in a few minutes a day.",
    "Decide together with the client what the session should focus on.",
    "Ask the client to rate their confidence in the planned step.",
    "Pick one situation in the coming week where the client will try the new approach.",
    "Summarise the client's goal and invite correction.",
    "Review the step agreed last time before adding anything new.",
]


def _hash(*parts: Any) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()[:8], "big")


def _uniform(span: float, *parts: Any) -> float:
    """A deterministic number in [-span, span] from the parts."""
    return (_hash(*parts) % 10_001) / 10_000 * 2 * span - span


def run_seed(config: GenerateConfig) -> int:
    """The run's (epoch's) seed: the call's seed without the per-session and re-ask offsets."""
    return int(config.seed or 0) % REASK_SEED_STEP % SESSION_SEED_STEP


def _texts(messages: list[ChatMessage]) -> tuple[str, str, str]:
    system = "\n".join(m.text for m in messages if m.role == "system")
    last_user = next((m.text for m in reversed(messages) if m.role == "user"), "")
    return system, last_user, "\n".join(m.text for m in messages)


def _session(text: str) -> int:
    match = (re.search(r"This is session (\d+)", text) or re.search(r"Session (\d+) begins", text)
             or re.search(r"Session (\d+) has just ended", text))
    return int(match.group(1)) if match else 1


def _count(text: str, pool: list[str]) -> int:
    return sum(1 for sentence in pool if sentence in text)


def _pick(pool: list[str], index: int) -> str:
    return pool[index % len(pool)]


def therapist_turn(system: str, messages: list[ChatMessage], seed: int) -> str:
    session = _session(system)
    turn = sum(1 for m in messages if m.role == "assistant") + 1
    name = re.search(r"Your client's name is ([^.\n]+)", system)
    course = _hash(name.group(1) if name else system[:200], seed)
    place = (session - 1) * 4 + turn  # distinct for every turn of a default course (4 turns)
    feedback = system.split("gave you the following feedback", 1)[1] if "gave you the following feedback" in system else ""
    if feedback and any(point in feedback for point in EXPERT_POINTS):
        last = _pick(SPECIFIC, course + place)
    elif feedback:
        last = _pick(ATTENTIVE, course + place)
    else:
        last = _pick(THERAPIST_NEUTRAL, course + place)
    return " ".join([_pick(THERAPIST_OPENERS, course + place), _pick(THERAPIST_CORES, course // 7 + 2 * place), last])


def client_turn(system: str, messages: list[ChatMessage], seed: int) -> str:
    session = _session(system)
    turn = sum(1 for m in messages if m.role == "assistant") + 1
    persona = system.split("What was said in your earlier sessions", 1)[0].split("This is session", 1)[0]
    course = _hash(persona[-400:], seed)  # the persona only: the same for every session of the course
    place = (session - 1) * 4 + turn
    return " ".join([_pick(CLIENT_OPENERS, course + place), _pick(CLIENT_CORES, course // 5 + 2 * place)])


def expert_reply(text: str, seed: int) -> str:
    session = _session(text)
    start = _hash(text[:300], seed) + session
    points = [_pick(EXPERT_POINTS, start), _pick(EXPERT_POINTS, start + 4)]
    return f"Feedback on session {session}: " + " ".join(points)


def _rating(value: float) -> str:
    return json.dumps({"rating": int(round(min(100.0, max(0.0, value))))})


def exp1_rating(system: str, user: str, seed: int) -> str:
    session = _session(user)
    blocks = re.split(r"(?m)^Session \d+:", user.split("has just ended", 1)[0])
    specific = sum(1 for block in blocks if _count(block, SPECIFIC))
    attentive = sum(1 for block in blocks if _count(block, ATTENTIVE))
    persona = system[-600:]  # the rating prompt's persona: the same for every condition
    value = (BASE_RATING + _uniform(5, "persona", persona)
             + (BASE_SLOPE + _uniform(1, "run", persona, seed)) * (session - 1)
             + SPECIFIC_GAIN * specific + ATTENTIVE_GAIN * attentive
             + _uniform(4, "noise", persona, seed, session, user[-2000:]))  # each dialogue its own noise
    return _rating(value)


def exp2_rating(user: str, seed: int) -> str:
    match = re.search(r'The therapist now says to you:\s*"(.*)"\s*\n', user, re.DOTALL)
    response = match.group(1) if match else user
    context = user.split("The therapist now says to you:", 1)[0]
    value = (EXP2_BASE + EXP2_SPECIFIC * _count(response, SPECIFIC) + EXP2_ATTENTIVE * _count(response, ATTENTIVE)
             + _uniform(5, "snippet", context) + _uniform(4, "noise", response, seed))
    return _rating(value)


def demo_reply(messages: list[ChatMessage], config: GenerateConfig) -> str:
    """The demo's reply to a prompt (see the module docstring)."""
    system, user, text = _texts(messages)
    seed = run_seed(config)
    if "Reply with only a JSON object" in text and '"rating"' in text:
        if "The therapist now says to you" in user:
            return exp2_rating(user, seed)
        return exp1_rating(system, user, seed)
    if "You rewrite a therapist's response" in system or "Rewrite the therapist's response" in user:
        start = _hash(text[-500:], seed)  # Experiment 2's revision of the human turn
        return " ".join([_pick(THERAPIST_OPENERS, start), _pick(SPECIFIC, start), _pick(SPECIFIC, start + 5)])
    if "supervising a therapist" in system and "Critique this response" in user:  # Experiment 2's critique
        reply = expert_reply(text, seed)  # in the Expert's form of fields (expert.yaml: critique_form)
        return f"WORKS: The response stays with the client.\nCHANGE: {reply}\nWHY: The guidelines ask for it."
    if "supervising a therapist" in system:  # Experiment 1's feedback
        return expert_reply(text, seed)
    if "role-playing a client" in system:
        return client_turn(system, messages, seed)
    if "psychotherapist" in system:
        if "session that is already under" in system:  # Experiment 2: continue a real session
            start = _hash(text[-500:], seed)
            return " ".join([_pick(THERAPIST_OPENERS, start), _pick(ATTENTIVE, start)])
        return therapist_turn(system, messages, seed)
    # a prompt the demo does not script (a questionnaire, the safety judge): a plain sentence,
    # which the task records as unparseable (missing), never as a value
    return "This demo model only scripts the two experiments' therapist, client, expert and rating prompts."


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


@modelapi(name=DEMO_PROVIDER)
class DemoModelAPI(ModelAPI):
    """``--model psysim/demo``: scripted, deterministic, offline (see the module docstring)."""

    def __init__(self, model_name: str, base_url: str | None = None, api_key: str | None = None,
                 config: GenerateConfig = GenerateConfig(), **model_args: Any) -> None:
        if model_name != "demo":
            raise ValueError(f"{DEMO_PROVIDER}/{model_name}: the {DEMO_PROVIDER} provider has one model, "
                             f"{DEMO_PROVIDER}/demo")
        super().__init__(model_name, base_url, api_key, [], config)

    async def generate(self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice,
                       config: GenerateConfig) -> ModelOutput:
        reply = demo_reply(input, config)
        output = ModelOutput.from_content(model=f"{DEMO_PROVIDER}/demo", content=reply, stop_reason="stop")
        prompt_tokens = sum(_tokens(m.text) for m in input)
        output.usage = ModelUsage(input_tokens=prompt_tokens, output_tokens=_tokens(reply),
                                  total_tokens=prompt_tokens + _tokens(reply))
        return output

    def max_connections(self) -> int:
        return 64  # no server behind it: as many concurrent calls as Inspect schedules
