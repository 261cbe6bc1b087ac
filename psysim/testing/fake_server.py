"""A scripted OpenAI-compatible chat server on 127.0.0.1, for tests and benchmarks.

It answers as the role its system prompt names (therapist, client, expert), returns a valid
JSON rating whenever one is asked for, and records what it was sent, so a test can check what
Inspect's real provider transmitted and a benchmark can measure concurrency. Latency is fixed
(``latency``) plus, optionally, proportional to the requested ``max_tokens``; with
``max_concurrency`` it serves at most that many requests at once and queues the rest, as a vLLM
replica's batch limit (``--max-num-seqs``) does.

Bounded: it binds only to loopback, refuses requests past ``max_requests`` (HTTP 503) and shuts
itself down after ``max_seconds``.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

# Dialogue turns stay under the integrity check's cross-session echo length
# (psysim/data/integrity.yaml), so the same line said again in every session is not a replay.
REPLIES = {
    "therapist": "It sounds like this weighs on you.",
    "client": "I have been sleeping badly lately.",
    "expert": "FAKE-EXPERT: reflect the client's feelings before giving advice, and agree on one goal.",
    "unknown": "unknown role",
}
CRITIQUE_REQUEST = "Critique this response against the guidelines"
CRITIQUE_REPLY = ("WORKS: FAKE-EXPERT: the response stays with the client.\n"
                  "CHANGE: reflect the client's feelings before giving advice, and agree on one goal.\n"
                  "WHY: the guidelines ask for a shared goal.")


def _text(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content or "")


def role_of(messages: list[dict[str, Any]]) -> str:
    """The agent a request comes from, read off its system prompt."""
    system = next((_text(m["content"]) for m in messages if m["role"] == "system"), "")
    if "psychotherapist" in system:
        return "therapist"
    if "role-playing a client" in system or "You are the client" in system:
        return "client"
    if "clinical psychologist supervising" in system:
        return "expert"
    return "unknown"


def is_rating_request(body: dict[str, Any]) -> bool:
    return bool(body.get("response_format")) or '{"rating"' in _text(body["messages"][-1]["content"])


def tokens(text: str) -> int:
    """A rough token count (about 4 characters a token), for usage figures."""
    return max(1, len(text) // 4)


class _Server(ThreadingHTTPServer):
    # socketserver's default listen backlog is 5: a burst of new connections from a client
    # with dozens of requests in flight would be refused
    request_queue_size = 1024

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client (or a balancer) closing an idle keep-alive connection is not an error
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


class FakeOpenAIServer:
    """The scripted server; ``with FakeOpenAIServer() as server: ... server.base_url``.

    Args:
        latency: Seconds added to every chat request.
        latency_per_token: Seconds per requested ``max_tokens`` on top of ``latency``.
        max_requests: Requests past this count are refused (HTTP 503).
        max_seconds: The server shuts itself down after this many seconds.
        rating: The rating returned to every rating request (unless ``derive_ratings``).
        derive_ratings: Return a rating derived from a hash of the request (messages, the
            request's ``seed``) and ``seed`` instead of the fixed ``rating``: deterministic for a
            given prompt, yet different between personas and runs, so statistics vary.
        seed: Mixed into derived ratings.
        max_concurrency: Requests served at once; later ones wait for a slot (None: no cap).
    """

    def __init__(
        self,
        latency: float = 0.0,
        latency_per_token: float = 0.0,
        max_requests: int | None = None,
        max_seconds: float | None = None,
        rating: int = 64,
        derive_ratings: bool = False,
        seed: int = 0,
        max_concurrency: int | None = None,
    ) -> None:
        self.latency, self.latency_per_token = latency, latency_per_token
        self.max_requests, self.max_seconds, self.rating = max_requests, max_seconds, rating
        self.derive_ratings, self.seed = derive_ratings, seed
        self.max_concurrency = max_concurrency
        self._slots = threading.BoundedSemaphore(max_concurrency) if max_concurrency else None
        self.requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.prompt_tokens = self.completion_tokens = 0
        self.serving = self.peak_serving = 0  # requests past the queue (at most max_concurrency)
        self.peak_in_flight = 0
        self._lock = threading.Lock()
        self._stopped = threading.Event()  # set at shutdown: ends any deliberate wait early
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real server

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path.split("?")[0].rstrip("/").endswith("/stats"):
                    with server._lock:
                        self.send_json(200, server.stats())
                        if "reset" in self.path:  # start a new measurement
                            server.requests.clear()
                            server.peak_in_flight = server.in_flight
                            server.prompt_tokens = server.completion_tokens = 0
                            server.peak_serving = server.serving
                    return
                self.send_json(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._lock:
                    if server.max_requests is not None and len(server.requests) >= server.max_requests:
                        refused = True
                    else:
                        refused = False
                        server.requests.append(body)
                        index = len(server.requests)
                        server.in_flight += 1
                        server.peak_in_flight = max(server.peak_in_flight, server.in_flight)
                if refused:
                    self.send_json(503, {"error": {"message": "request limit reached"}})
                    return
                try:
                    server.answer(self, body, index)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (e.g. its attempt timeout) before the reply
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def send_json(self, status: int, payload: dict[str, Any]) -> None:
                self.send_bytes(status, json.dumps(payload).encode())

            def send_bytes(self, status: int, data: bytes, content_type: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                if self.close_connection:
                    # say so: a client that pools a connection the server then closes may reuse it
                    # before the close arrives and see a disconnect instead of this reply
                    self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._timer: threading.Timer | None = None

    def answer(self, handler: Any, body: dict[str, Any], index: int) -> None:
        """Reply to the ``index``-th chat request (1-based); a subclass may answer otherwise."""
        if self._slots is not None:
            while not self._slots.acquire(timeout=0.5):  # queued behind the batch limit
                if self._stopped.is_set():
                    return
        try:
            with self._lock:
                self.serving += 1
                self.peak_serving = max(self.peak_serving, self.serving)
            self.wait(self.latency + self.latency_per_token * (body.get("max_tokens") or 0))
        finally:
            with self._lock:
                self.serving -= 1
            if self._slots is not None:
                self._slots.release()
        self.send_completion(handler, body, self.reply_text(body))

    def reply_text(self, body: dict[str, Any]) -> str:
        """The scripted reply: a JSON rating for a rating request, else the role's line."""
        if is_rating_request(body):
            return f'{{"rating": {self.rating_for(body) if self.derive_ratings else self.rating}}}'
        role = role_of(body["messages"])
        if role == "expert" and CRITIQUE_REQUEST in _text(body["messages"][-1]["content"]):
            return CRITIQUE_REPLY  # Experiment 2's critique comes in the Expert's form of fields
        return REPLIES[role]

    def rating_for(self, body: dict[str, Any]) -> int:
        """A rating from 20 to 90 derived from the request's messages, its seed and ``seed``."""
        key = json.dumps([self.seed, body.get("seed"), body["messages"]], sort_keys=True)
        return 20 + int(hashlib.sha256(key.encode()).hexdigest(), 16) % 71

    def send_completion(self, handler: Any, body: dict[str, Any], text: str, finish_reason: str | None = "stop") -> None:
        """A chat completion carrying ``text``, with usage figures (``finish_reason`` None: sent as null)."""
        prompt = " ".join(_text(m["content"]) for m in body["messages"])
        usage = {"prompt_tokens": tokens(prompt), "completion_tokens": tokens(text)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        with self._lock:
            self.prompt_tokens += usage["prompt_tokens"]
            self.completion_tokens += usage["completion_tokens"]
        handler.send_json(200, {
            "id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion", "created": 0,
            "model": body.get("model", "fake"),
            "choices": [{"index": 0, "finish_reason": finish_reason, "message": {"role": "assistant", "content": text}}],
            "usage": usage,
        })

    def wait(self, seconds: float) -> None:
        """Sleep, but no longer than until the server stops."""
        if seconds > 0:
            self._stopped.wait(seconds)

    def stats(self) -> dict[str, Any]:
        """Request count, peak concurrency and requested max_tokens (for the critical path)."""
        return {
            "requests": len(self.requests),
            "peak_in_flight": self.peak_in_flight,
            "peak_serving": self.peak_serving,
            "requested_tokens": sum(r.get("max_tokens") or 0 for r in self.requests),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
        }

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> "FakeOpenAIServer":
        self._thread.start()
        if self.max_seconds is not None:  # stops by itself, whatever the caller does
            self._timer = threading.Timer(self.max_seconds, self._stop)
            self._timer.daemon = True
            self._timer.start()
        return self

    def _stop(self) -> None:
        self._stopped.set()
        self.httpd.shutdown()

    def __exit__(self, *exc: Any) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._stop()
        self.httpd.server_close()


def add_server_arguments(parser: Any) -> None:
    """The command-line options shared by this server and :mod:`psysim.testing.fault_server`."""
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--per-token", type=float, default=0.0)
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--max-seconds", type=float, default=3600.0)
    parser.add_argument("--derive-ratings", action="store_true", help="ratings derived from a hash of the prompt")
    parser.add_argument("--seed", type=int, default=0, help="mixed into derived ratings")
    parser.add_argument("--max-concurrency", type=int, default=None,
                        help="requests served at once (a replica's batch limit); the rest queue")


def server_settings(args: Any) -> dict[str, Any]:
    return {
        "latency": args.latency, "latency_per_token": args.per_token, "max_requests": args.max_requests,
        "max_seconds": args.max_seconds, "derive_ratings": args.derive_ratings, "seed": args.seed,
        "max_concurrency": args.max_concurrency,
    }


def serve(server: FakeOpenAIServer) -> int:
    """Serve until ``max_seconds`` or until the process is terminated; prints ``READY <base_url>``."""
    with server:
        print(f"READY {server.base_url}", flush=True)
        server._thread.join()
    return 0


@contextmanager
def server_process(*options: str) -> Iterator[str]:
    """``python -m psysim.testing.fake_server OPTIONS`` in a subprocess (its threads do not share the
    caller's GIL, as a real server); yields its base URL; always stopped."""
    process = subprocess.Popen([sys.executable, "-m", "psysim.testing.fake_server", *options], stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline().strip() if process.stdout else ""
        if not line.startswith("READY "):
            raise RuntimeError(f"fake server did not start: {line!r}")
        yield line.split(" ", 1)[1]
    finally:
        process.terminate()
        process.wait(timeout=10)


def main(argv: list[str] | None = None) -> int:
    """Run the server in its own process (so its threads do not share the caller's GIL):
    prints ``READY <base_url>``; ``GET /stats`` returns request count and peak concurrency
    (``/stats?reset`` also starts counting afresh)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m psysim.testing.fake_server")
    add_server_arguments(parser)
    return serve(FakeOpenAIServer(**server_settings(parser.parse_args(argv))))


if __name__ == "__main__":
    raise SystemExit(main())
