"""A fault-injecting OpenAI-compatible server on 127.0.0.1, for tests of failure handling.

It is :class:`psysim.testing.fake_server.FakeOpenAIServer` (same replies, same bounds: loopback only,
``max_requests``, ``max_seconds``) plus a schedule of :class:`Fault` s. Each chat request is
classified as ``therapist``, ``client``, ``expert`` (read off the system prompt by ``role_of``)
or ``rating`` (a rating request, whoever asks it); the first fault in the schedule that matches
the request replaces the normal reply. Every injection is recorded (``server.injected``: count
per kind; ``server.injections``: one entry per injected fault), also in ``GET /stats``.

Fault kinds (what the client sees):

===================  ==========================================================================
``http_500``         HTTP 500 (Inspect retries it)
``http_429``         HTTP 429 rate limit (Inspect retries it)
``drop``             the connection is closed without a reply (Inspect retries it; a refused
                     connection to a local server, by contrast, fails at once)
``stall``            no reply for ``seconds`` (set it past the attempt timeout), then the
                     normal reply if the client still waits
``empty``            a completion with empty content, ``finish_reason=stop``
``length``           a completion with ``text`` (default ``Rating: 7``), ``finish_reason=length``
``context_length``   vLLM's HTTP 400 "This model's maximum context length is ..." (Inspect's
                     ``vllm/`` provider returns it as ``stop_reason=model_length`` with the error
                     text as the completion); ``shape="flat"`` gives vLLM < 0.10's body
``garbage``          HTTP 200 with a body that is not JSON (the OpenAI client raises a JSON
                     decode error, which Inspect does not retry)
``text``             a completion with ``text`` (default: invalid JSON rating text)
``finish``           a completion with ``text`` (default ``Rating: 7``) and ``finish_reason``
                     (default ``abort``, vLLM's reason for an aborted request; Inspect maps it and
                     every reason it does not know to ``unknown``); ``finish_reason=None`` sends
                     ``null`` (a server that omits it), ``content_filter`` a filtered reply
``error_page``       HTTP 200 with an error page as the completion, ``finish_reason=stop``:
                     ``shape="bare"`` ``Internal Server Error``, ``"html"`` nginx's 502 page,
                     ``"json"`` a JSON error body (:data:`ERROR_PAGES`); ``text`` overrides it
===================  ==========================================================================

In process::

    schedule = [Fault("empty", role="client", calls=[3]), Fault("http_500", role="rating")]
    with FaultServer(schedule, max_seconds=60) as server:
        ...  # VLLM_BASE_URL=server.base_url
    server.injected  # Counter({"http_500": ..., "empty": 1})

As a subprocess: ``python -m psysim.testing.fault_server --schedule faults.json`` prints
``READY <base_url>``; the JSON file holds a list of Fault fields (``when`` excepted).
"""

from __future__ import annotations

import json
import socket
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from psysim.testing.fake_server import (
    FakeOpenAIServer,
    _text,
    add_server_arguments,
    is_rating_request,
    role_of,
    serve,
    server_settings,
)

FaultKind = Literal["http_500", "http_429", "drop", "stall", "empty", "length", "context_length", "garbage", "text",
                    "finish", "error_page"]
FAULT_KINDS: tuple[str, ...] = FaultKind.__args__  # type: ignore[attr-defined]
REQUEST_ROLES = ("therapist", "client", "expert", "rating", "unknown")

GARBAGE_RATING = '{"rating": 85, "rating": '
"""Default ``text`` fault: a rating reply that is not valid JSON."""

ERROR_PAGES = {
    "bare": "Internal Server Error",
    # nginx's own 502 page, byte for byte (CRLF line ends)
    "html": "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1>"
            "</center>\r\n<hr><center>nginx/1.24.0</center>\r\n</body>\r\n</html>\r\n",
    "json": '{"detail": "Internal Server Error"}',
}
"""The ``error_page`` fault's completions, by ``shape``: what a proxy or a crashed app in front of
the model server returns as an ordinary reply."""
SHAPES = {"context_length": ("nested", "flat"), "error_page": tuple(ERROR_PAGES)}


@dataclass
class Fault:
    """One entry of a fault schedule.

    Args:
        kind: What to return instead of the normal reply (see the module docstring).
        role: Only requests of this role (``therapist``, ``client``, ``expert``, ``rating``);
            None: any request. Roles are disjoint: a client's rating request is ``rating``.
        calls: Inject only on these call numbers (1-based), counted over the requests of
            ``role`` (over all requests when ``role`` is None), retries included: with
            ``calls=[3]`` the 3rd call fails and its retry (the 4th) is answered normally.
            None: every matching call.
        contains: Only requests whose messages contain this text (e.g. a persona's name).
        when: Further condition ``when(n, role, body) -> bool`` with ``n`` the call number as
            for ``calls`` (in-process only).
        times: Inject at most this many times (None: no limit).
        text: Content for ``length``, ``text``, ``finish`` and ``error_page`` faults.
        seconds: How long a ``stall`` lasts (it ends early when the server stops).
        shape: ``context_length`` body: ``nested`` (vLLM >= 0.10: ``{"error": {...}}``) or
            ``flat`` (older vLLM: ``{"object": "error", "message": ...}``); ``error_page``: ``bare``,
            ``html`` or ``json`` (None: each kind's first).
        finish_reason: The ``finish`` fault's finish reason (None: sent as ``null``).
    """

    kind: FaultKind
    role: str | None = None
    calls: Sequence[int] | None = None
    contains: str | None = None
    when: Callable[[int, str, dict[str, Any]], bool] | None = field(default=None, repr=False)
    times: int | None = None
    text: str | None = None
    seconds: float = 3600.0
    shape: str | None = None
    finish_reason: str | None = "abort"

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; known: {', '.join(FAULT_KINDS)}")
        if self.role is not None and self.role not in REQUEST_ROLES:
            raise ValueError(f"unknown role {self.role!r}; known: {', '.join(REQUEST_ROLES)}")
        shapes = SHAPES.get(self.kind, ())
        if self.shape is None:
            self.shape = shapes[0] if shapes else None
        elif self.shape not in shapes:
            raise ValueError(f"unknown shape {self.shape!r} for {self.kind}; known: {', '.join(shapes) or 'none'}")


def request_role(body: dict[str, Any]) -> str:
    """``rating`` for a rating request, else the role that sent it (``role_of``)."""
    return "rating" if is_rating_request(body) else role_of(body["messages"])


def context_length_error(body: dict[str, Any], shape: str = "nested", max_model_len: int = 4096) -> dict[str, Any]:
    """vLLM's HTTP 400 body for a request past the model's context window."""
    completion = body.get("max_tokens") or 1000
    message = (
        f"This model's maximum context length is {max_model_len} tokens. However, you requested "
        f"{max_model_len + 904} tokens ({max_model_len + 904 - completion} in the messages, {completion} in "
        "the completion). Please reduce the length of the messages or completion."
    )
    error = {"message": message, "type": "BadRequestError", "param": None, "code": 400}
    return {"object": "error", **error} if shape == "flat" else {"error": error}


def load_schedule(path: str | Path) -> list[Fault]:
    """A schedule from a JSON file: a list of objects with :class:`Fault` fields (no ``when``)."""
    entries = json.loads(Path(path).read_text())
    if not isinstance(entries, list):
        raise ValueError(f"{path}: a fault schedule is a JSON list of faults")
    faults = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "when" in entry:
            raise ValueError(f"{path}: fault {i}: an object of Fault fields without 'when'")
        try:
            faults.append(Fault(**entry))
        except (TypeError, ValueError) as ex:
            raise ValueError(f"{path}: fault {i}: {ex}") from None
    return faults


class FaultServer(FakeOpenAIServer):
    """:class:`FakeOpenAIServer` that injects the faults of ``schedule``.

    Args:
        schedule: The faults; the first that matches a request is injected.
        max_requests: As for FakeOpenAIServer (bounded by default here).
        max_seconds: As for FakeOpenAIServer (bounded by default here).
        **settings: Other FakeOpenAIServer settings (latency, derive_ratings, seed, ...).
    """

    def __init__(
        self,
        schedule: Sequence[Fault] = (),
        max_requests: int | None = 5_000,
        max_seconds: float | None = 300.0,
        **settings: Any,
    ) -> None:
        super().__init__(max_requests=max_requests, max_seconds=max_seconds, **settings)
        self.schedule = list(schedule)
        self.injected: Counter[str] = Counter()
        self.injections: list[dict[str, Any]] = []
        self.calls_by_role: Counter[str] = Counter()
        self._times: Counter[int] = Counter()  # injections per schedule entry
        self._fault_lock = threading.Lock()

    def stats(self) -> dict[str, Any]:
        return super().stats() | {"injected": dict(self.injected), "calls_by_role": dict(self.calls_by_role)}

    def fault_for(self, body: dict[str, Any], index: int) -> Fault | None:
        """The fault to inject into the ``index``-th request (and record it), or None."""
        role = request_role(body)
        prompt = "\n".join(_text(m.get("content")) for m in body["messages"])
        with self._fault_lock:
            self.calls_by_role[role] += 1
            role_call = self.calls_by_role[role]
            for i, fault in enumerate(self.schedule):
                if fault.role is not None and fault.role != role:
                    continue
                n = index if fault.role is None else role_call
                if fault.calls is not None and n not in fault.calls:
                    continue
                if fault.contains is not None and fault.contains not in prompt:
                    continue
                if fault.times is not None and self._times[i] >= fault.times:
                    continue
                if fault.when is not None and not fault.when(n, role, body):
                    continue
                self._times[i] += 1
                self.injected[fault.kind] += 1
                self.injections.append({"kind": fault.kind, "role": role, "call": n, "request": index})
                return fault
        return None

    def answer(self, handler: Any, body: dict[str, Any], index: int) -> None:
        fault = self.fault_for(body, index)
        if fault is None:
            super().answer(handler, body, index)
        elif fault.kind in ("http_500", "http_429"):
            status = int(fault.kind.removeprefix("http_"))
            kind = "InternalServerError" if status == 500 else "RateLimitError"
            handler.close_connection = True
            handler.send_json(status, {"error": {"message": f"injected fault: HTTP {status}", "type": kind, "code": status}})
        elif fault.kind == "drop":
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)  # no status line: the client sees a disconnect
        elif fault.kind == "stall":
            self.wait(fault.seconds)
            handler.close_connection = True
            self.send_completion(handler, body, self.reply_text(body))
        elif fault.kind == "empty":
            self.send_completion(handler, body, "")
        elif fault.kind == "length":
            self.send_completion(handler, body, fault.text if fault.text is not None else "Rating: 7", "length")
        elif fault.kind == "context_length":
            handler.send_json(400, context_length_error(body, fault.shape or "nested"))
        elif fault.kind == "garbage":
            handler.close_connection = True
            handler.send_bytes(200, b"<html>502 Bad Gateway</html> {not json", "application/json")
        elif fault.kind == "text":
            self.send_completion(handler, body, fault.text if fault.text is not None else GARBAGE_RATING)
        elif fault.kind == "finish":
            self.send_completion(handler, body, fault.text if fault.text is not None else "Rating: 7", fault.finish_reason)
        elif fault.kind == "error_page":
            self.send_completion(handler, body, fault.text if fault.text is not None else ERROR_PAGES[fault.shape])


def main(argv: list[str] | None = None) -> int:
    """``python -m psysim.testing.fault_server --schedule FILE.json``: prints ``READY <base_url>``;
    ``GET /stats`` adds the injected faults per kind."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m psysim.testing.fault_server")
    parser.add_argument("--schedule", required=True, help="JSON list of faults (Fault fields)")
    add_server_arguments(parser)
    parser.set_defaults(max_requests=5_000, max_seconds=300.0)
    args = parser.parse_args(argv)
    return serve(FaultServer(load_schedule(args.schedule), **server_settings(args)))


if __name__ == "__main__":
    raise SystemExit(main())
