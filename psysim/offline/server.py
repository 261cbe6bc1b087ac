"""A local OpenAI-compatible model server (llama.cpp) that the project starts and stops.

    with LlamaCppServer(model_path, alias="qwen2.5-coder-1.5b-instruct") as server:
        os.environ["VLLM_BASE_URL"] = server.base_url   # Inspect's vllm/ provider talks to it

Loopback only. Health-checked before use; stopped on exit, on error and on Ctrl-C (SIGTERM,
then SIGKILL after a grace period: the server has been seen to ignore SIGTERM while idle).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from psysim.offline.cache import OfflineError, cache_dir


class PortInUseError(OfflineError):
    pass


def stop_on_sigterm() -> None:
    """Make SIGTERM unwind like Ctrl-C, so ``with LlamaCppServer(...)`` stops the server."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


class LlamaCppServer:
    def __init__(
        self,
        model_path: Path,
        alias: str,
        port: int | None = None,
        host: str = "127.0.0.1",
        n_ctx: int = 4096,
        n_threads: int | None = None,
        ready_timeout: float = 180.0,
        log_path: Path | None = None,
    ) -> None:
        self.model_path, self.alias, self.host, self.n_ctx = Path(model_path), alias, host, n_ctx
        self.n_threads = n_threads or os.cpu_count() or 2
        self.port = port
        self.ready_timeout = ready_timeout
        self.log_path = log_path or cache_dir() / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> "LlamaCppServer":
        if not self.model_path.is_file():
            raise OfflineError(f"server: model file not found: {self.model_path}")
        if self.port is None:
            self.port = free_port(self.host)
        elif port_in_use(self.port, self.host):
            raise PortInUseError(f"server: port {self.port} on {self.host} is already in use; pick another with --port")
        command = self.command()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "llama_cpp.server", "--model", str(self.model_path),
            "--model_alias", self.alias, "--host", self.host, "--port", str(self.port),
            "--n_ctx", str(self.n_ctx), "--n_threads", str(self.n_threads),
        ]

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise OfflineError(
                    f"server: exited with code {self.process.returncode} before it was ready; "
                    f"last lines of {self.log_path}:\n{self._log_tail()}"
                )
            if self.healthy():
                return
            time.sleep(0.5)
        raise OfflineError(f"server: not ready after {self.ready_timeout:.0f}s; see {self.log_path}")

    def healthy(self) -> bool:
        """The server lists our model alias at ``/v1/models``."""
        try:
            with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as response:
                models = json.load(response)
        except (urllib.error.URLError, OSError, ValueError):
            return False
        return any(m.get("id") == self.alias for m in models.get("data", []))

    def stop(self, grace: float = 5.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=grace)
        except ProcessLookupError:
            pass

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> "LlamaCppServer":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
