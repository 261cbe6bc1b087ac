"""The rating app served for real on 127.0.0.1 (a free port), in a thread or a child process."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import uvicorn

from psysim.rating_app.app import create_app

START_TIMEOUT = 30.0
REQUEST_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(base: str, deadline: float = START_TIMEOUT) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            urllib.request.urlopen(base + "/", timeout=2).read()
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    raise TimeoutError(f"the rating server at {base} did not answer within {deadline:g} s")


@contextmanager
def served(study: Path) -> Iterator[str]:
    """The app over ``study`` in a background thread; stopped (and joined) on exit."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(study), host="127.0.0.1", port=port, access_log=False,
                                           log_level="warning", limit_concurrency=100))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=START_TIMEOUT)


@contextmanager
def served_process(study: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """``psysim-rate serve`` as a child process (killed on exit if still running)."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "psysim.rating_app.cli", "serve", "--study", str(study),
                                "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base)
        yield base, process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=START_TIMEOUT)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def post(url: str, fields: dict[str, str], origin: str | None = "") -> tuple[int, str]:
    """POST a form; (status, Location or body). Redirects are not followed. ``origin``: the
    ``Origin`` header; "" (default): the server's own, as a browser sends from its pages; None: none."""
    data = urllib.parse.urlencode(fields).encode()
    parts = urllib.parse.urlsplit(url)
    headers = {} if origin is None else {"Origin": origin or f"{parts.scheme}://{parts.netloc}"}
    try:
        with _opener.open(urllib.request.Request(url, data=data, method="POST", headers=headers),
                          timeout=REQUEST_TIMEOUT) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as ex:
        return ex.code, ex.headers.get("Location") or ex.read().decode()
