"""A scripted OpenAI-compatible chat server on 127.0.0.1, for tests and benchmarks.

It answers as the role its system prompt names (therapist, client, expert), returns a valid
JSON rating whenever one is asked for, and records what it was sent, so a test can check what
Inspect's real provider transmitted and a benchmark can measure concurrency. Latency is fixed
(``latency``) plus, optionally, proportional to the requested ``max_tokens``.

Bounded: it binds only to loopback, refuses requests past ``max_requests`` (HTTP 503) and shuts
itself down after ``max_seconds``.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REPLIES = {
    "therapist": "It sounds like this has been weighing on you. What would you like to be different?",
    "client": "I have been sleeping badly and I feel on edge most days.",
    "expert": "FAKE-EXPERT: reflect the client's feelings before giving advice, and agree on one goal.",
    "unknown": "unknown role",
}


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


class FakeOpenAIServer:
    def __init__(
        self,
        latency: float = 0.0,
        latency_per_token: float = 0.0,
        max_requests: int | None = None,
        max_seconds: float | None = None,
        rating: int = 64,
    ) -> None:
        self.latency, self.latency_per_token = latency, latency_per_token
        self.max_requests, self.max_seconds, self.rating = max_requests, max_seconds, rating
        self.requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real server

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path.split("?")[0].rstrip("/").endswith("/stats"):
                    with server._lock:
                        self._send(200, server.stats())
                        if "reset" in self.path:  # start a new measurement
                            server.requests.clear()
                            server.peak_in_flight = server.in_flight
                    return
                self._send(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._lock:
                    if server.max_requests is not None and len(server.requests) >= server.max_requests:
                        refused = True
                    else:
                        refused = False
                        server.requests.append(body)
                        server.in_flight += 1
                        server.peak_in_flight = max(server.peak_in_flight, server.in_flight)
                if refused:
                    self._send(503, {"error": {"message": "request limit reached"}})
                    return
                try:
                    time.sleep(server.latency + server.latency_per_token * (body.get("max_tokens") or 0))
                    text = f'{{"rating": {server.rating}}}' if is_rating_request(body) else REPLIES[role_of(body["messages"])]
                    prompt = " ".join(_text(m["content"]) for m in body["messages"])
                    usage = {"prompt_tokens": tokens(prompt), "completion_tokens": tokens(text)}
                    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
                    self._send(200, {
                        "id": f"chatcmpl-{len(server.requests)}", "object": "chat.completion", "created": 0,
                        "model": body.get("model", "fake"),
                        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
                        "usage": usage,
                    })
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._timer: threading.Timer | None = None

    def stats(self) -> dict[str, Any]:
        """Request count, peak concurrency and requested max_tokens (for the critical path)."""
        return {
            "requests": len(self.requests),
            "peak_in_flight": self.peak_in_flight,
            "requested_tokens": sum(r.get("max_tokens") or 0 for r in self.requests),
        }

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> "FakeOpenAIServer":
        self._thread.start()
        if self.max_seconds is not None:  # stops by itself, whatever the caller does
            self._timer = threading.Timer(self.max_seconds, self.httpd.shutdown)
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()


def main(argv: list[str] | None = None) -> int:
    """Run the server in its own process (so its threads do not share the caller's GIL):
    prints ``READY <base_url>``; ``GET /stats`` returns request count and peak concurrency
    (``/stats?reset`` also starts counting afresh)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m psysim.fake_server")
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--per-token", type=float, default=0.0)
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--max-seconds", type=float, default=3600.0)
    args = parser.parse_args(argv)
    server = FakeOpenAIServer(args.latency, args.per_token, args.max_requests, args.max_seconds)
    with server:
        print(f"READY {server.base_url}", flush=True)
        server._thread.join()  # until max_seconds, or the process is terminated
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
