"""``psysim-paper``'s preflight: before any call of the study, check that it can run at all.

1. The model's provider loads (its package is installed).
2. ``vllm/`` without a server (no ``VLLM_BASE_URL``, no ``base_url``): Inspect would start a vLLM
   server itself, so the ``vllm`` package must be importable, and a gated model (Llama, Gemma,
   ...) that is not on disk or in the Hugging Face cache needs credentials (``HF_TOKEN``) for the
   server to download it.
3. One probe call reaches the endpoint and its reply carries a finish reason: a server that omits
   ``finish_reason`` would make every call of the study fail its checks (a reply whose end is
   unknown may be cut short), so it is caught here, once, instead of after hours.

Every failure is a :class:`PreflightError` with a plain message (no console markup), naming what
is missing and how to fix it. No check writes anything.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path

from inspect_ai.model import GenerateConfig, Model, ModelOutput, get_model

# Model families whose Hugging Face weights are gated (a licence to accept, then a token).
GATED_PREFIXES = ("meta-llama/", "google/gemma", "mistralai/", "CohereForAI/", "bigcode/starcoder")
TOKEN_VARS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
PROBE_PROMPT = "Reply with the single word: ready"
PROBE_MAX_TOKENS = 8
KNOWN_STOP_REASONS = {"stop", "max_tokens", "model_length", "tool_calls", "content_filter"}


class PreflightError(RuntimeError):
    """A study that cannot run: the message says what is missing and how to fix it."""


def plain(text: str) -> str:
    """Console style tags (``[bold]...[/bold]``, as in Inspect's install hints) taken out of a message;
    other brackets (``psysim[vllm]``) stay."""
    return re.sub(r"\[/?(?:bold|italic|underline|red|yellow|green|blue|cyan|magenta|dim|b|i|u)\]", "", text).strip()


@dataclass
class ProbeResult:
    stop_reason: str
    text: str


def provider(model: str) -> str:
    return model.split("/", 1)[0]


def uses_managed_vllm(model: str, base_url: str | None = None) -> bool:
    """``vllm/...`` with no server given: Inspect starts (and downloads for) a server itself."""
    return provider(model) == "vllm" and not (base_url or os.environ.get("VLLM_BASE_URL"))


def hf_model_id(model: str) -> str:
    """``vllm/org/name[:adapter]`` -> ``org/name``."""
    return model.split("/", 1)[1].split(":", 1)[0] if "/" in model else model


def in_hf_cache(model_id: str) -> bool:
    """Weights already downloaded (the Hugging Face hub cache layout), so no token is needed."""
    home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
    hub = Path(os.environ.get("HF_HUB_CACHE", os.environ.get("HUGGINGFACE_HUB_CACHE", home / "hub")))
    folder = hub / f"models--{model_id.replace('/', '--')}" / "snapshots"
    return folder.is_dir() and any(folder.iterdir())


def has_hf_credentials() -> bool:
    if any(os.environ.get(var) for var in TOKEN_VARS):
        return True
    home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
    token = Path(os.environ.get("HF_TOKEN_PATH", home / "token"))
    return token.is_file() and bool(token.read_text(encoding="utf-8", errors="ignore").strip())


def check_static(model: str, base_url: str | None = None) -> list[str]:
    """The checks that make no call: provider package, managed vLLM, gated-model credentials.

    Returns:
        One line per check passed.

    Raises:
        PreflightError: the first check that fails.
    """
    done: list[str] = []
    if uses_managed_vllm(model, base_url):
        if importlib.util.find_spec("vllm") is None:
            raise PreflightError(
                f"--model {model}: no VLLM_BASE_URL is set, so Inspect would start a vLLM server itself, but the "
                "vllm package is not installed. Install it on the GPU machine (pip install vllm, or pip install "
                "'psysim[vllm]'), or start a server yourself and set VLLM_BASE_URL (and VLLM_API_KEY).")
        done.append("vllm is installed: Inspect will start a vLLM server for the study")
        model_id = hf_model_id(model)
        if model_id.startswith(GATED_PREFIXES) and not Path(model_id).exists() and not in_hf_cache(model_id):
            if not has_hf_credentials():
                raise PreflightError(
                    f"--model {model}: {model_id} is a gated model that is not in the Hugging Face cache, so the "
                    "vLLM server will download it, which needs credentials: accept the model's licence on "
                    "huggingface.co, then set HF_TOKEN (or run huggingface-cli login). Or point VLLM_BASE_URL at "
                    "a server that already serves it.")
            done.append(f"{model_id} is gated and not cached: Hugging Face credentials found for its download")
    try:
        get_model(model, base_url=base_url, memoize=False)
    except Exception as ex:  # a provider that is unknown or whose package is missing
        raise PreflightError(f"--model {model}: the model provider could not be loaded: "
                             f"{plain(str(ex)) or type(ex).__name__}") from None
    done.append(f"provider {provider(model)}/ loads")
    return done


async def probe(model: Model, timeout: int) -> ProbeResult:
    """One short call; PreflightError when it fails or its reply carries no finish reason."""
    config = GenerateConfig(max_tokens=PROBE_MAX_TOKENS, temperature=0.0, max_retries=1, timeout=timeout,
                            attempt_timeout=timeout)
    try:
        output: ModelOutput = await model.generate(PROBE_PROMPT, config=config)
    except Exception as ex:
        raise PreflightError(f"--model {model}: the probe call to the endpoint failed: {type(ex).__name__}: "
                             f"{plain(str(ex))[:400].rstrip('.')}. Is the server running and VLLM_BASE_URL (or the base URL) "
                             "right?") from None
    if output.error:
        raise PreflightError(f"--model {model}: the probe call returned an error: {plain(output.error)[:400]}")
    if not output.choices:
        raise PreflightError(f"--model {model}: the probe call's reply holds no choice")
    reason = str(output.choices[0].stop_reason)
    if reason not in KNOWN_STOP_REASONS:
        raise PreflightError(
            f"--model {model}: the endpoint's reply carries no finish_reason (stop reason {reason!r}). Without it "
            "no reply of the study can be told complete from cut short, so every call would fail its checks; "
            "use a server that returns finish_reason (vLLM, llama.cpp and OpenAI do).")
    return ProbeResult(reason, output.completion)


def run_preflight(model: str, base_url: str | None = None, call: bool = True, timeout: int = 900) -> list[str]:
    """All checks (the probe only when ``call``); one line per check passed.

    Raises:
        PreflightError: the first check that fails.
    """
    done = check_static(model, base_url)
    if call:
        result = asyncio.run(probe(get_model(model, base_url=base_url, memoize=False), timeout))
        done.append(f"probe call answered (finish reason {result.stop_reason})")
    return done
