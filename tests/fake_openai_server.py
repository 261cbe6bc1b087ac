"""A tiny OpenAI-compatible chat server on 127.0.0.1 for provider-path tests.

It answers as the role named by the system prompt, returns a JSON rating when asked for one,
and records every request body so tests can check what the real provider sent
(temperature, seed, response_format). Loopback only; it serves until stopped.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def role_of(messages: list[dict[str, Any]]) -> str:
    system = next((m["content"] for m in messages if m["role"] == "system"), "")
    if isinstance(system, list):
        system = " ".join(part.get("text", "") for part in system)
    if "psychotherapist" in system:
        return "therapist"
    if "role-playing a client" in system or "You are the client" in system:
        return "client"
    if "clinical psychologist supervising" in system:
        return "expert"
    return "unknown"


def reply_for(body: dict[str, Any]) -> str:
    role = role_of(body["messages"])
    if body.get("response_format") or '{"rating"' in json.dumps(body["messages"][-1]):
        return '{"rating": 64}'
    return {
        "therapist": "What would you like to focus on today?",
        "client": "I have been sleeping badly and feel on edge.",
        "expert": "FAKE-EXPERT: reflect feelings before giving advice.",
    }.get(role, "unknown role")


class FakeOpenAIServer:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:  # /v1/models, used by health checks
                self._send({"object": "list", "data": [{"id": "fake", "object": "model"}]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                text = reply_for(body)
                self._send(
                    {
                        "id": f"chatcmpl-{len(server.requests)}",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body.get("model", "fake"),
                        "choices": [
                            {"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": text}}
                        ],
                        "usage": {"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60},
                    }
                )

            def _send(self, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> "FakeOpenAIServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
