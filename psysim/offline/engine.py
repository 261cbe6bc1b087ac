"""The offline engine: llama.cpp through ``llama-cpp-python[server]``, built from PyPI's source.

The build is cached as a wheel in the user cache, so later runs install in seconds. llama.cpp's
native build enables AMX kernels where the CPU has them, and decoding then segfaults on some
CPUs (measured): build with native detection off, AMX off, and each x86 extension switched on
only if ``/proc/cpuinfo`` lists it. ``CMAKE_ARGS`` in the environment overrides all of this.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

from psysim.offline.cache import OfflineError, cache_dir

LLAMA_CPP_VERSION = "0.3.36"

# ggml option -> /proc/cpuinfo flag
_X86_FEATURES = {
    "GGML_AVX": "avx",
    "GGML_AVX2": "avx2",
    "GGML_FMA": "fma",
    "GGML_F16C": "f16c",
    "GGML_BMI2": "bmi2",
    "GGML_AVX512": "avx512f",
    "GGML_AVX512_VBMI": "avx512_vbmi",
    "GGML_AVX512_VNNI": "avx512_vnni",
    "GGML_AVX512_BF16": "avx512_bf16",
    "GGML_AVX_VNNI": "avx_vnni",
}


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cmake_args(flags: set[str] | None = None) -> str:
    """CMake options for llama.cpp on this CPU (no native detection, no AMX)."""
    if os.environ.get("CMAKE_ARGS"):
        return os.environ["CMAKE_ARGS"]
    options = ["-DGGML_NATIVE=OFF", "-DGGML_AMX_TILE=OFF", "-DGGML_AMX_INT8=OFF", "-DGGML_AMX_BF16=OFF"]
    if platform.machine() in ("x86_64", "AMD64"):
        flags = cpu_flags() if flags is None else flags
        options += [f"-D{option}={'ON' if flag in flags else 'OFF'}" for option, flag in _X86_FEATURES.items()]
    return " ".join(options)


def engine_installed() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None and importlib.util.find_spec("uvicorn") is not None


def ensure_engine(say: Callable[[str], None] = print) -> None:
    """Install ``llama-cpp-python[server]`` into this interpreter, building its wheel once."""
    if engine_installed():
        return
    wheels = cache_dir() / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    built = sorted(wheels.glob(f"llama_cpp_python-{LLAMA_CPP_VERSION}-*.whl"))
    if not built:
        compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
        if compiler is None or shutil.which("c++") is None and shutil.which("g++") is None:
            raise OfflineError(
                "engine: no C/C++ compiler found; llama-cpp-python builds llama.cpp from source. "
                "Install one (Debian/Ubuntu: apt-get install build-essential cmake) and run again."
            )
        log = wheels / "build.log"
        args = cmake_args()
        say(f"engine: building llama-cpp-python {LLAMA_CPP_VERSION} (a few minutes, once); log: {log}")
        say(f"engine: CMAKE_ARGS={args}")
        with log.open("w") as handle:
            result = subprocess.run(
                [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", "-w", str(wheels),
                 f"llama-cpp-python=={LLAMA_CPP_VERSION}"],
                env=os.environ | {"CMAKE_ARGS": args}, stdout=handle, stderr=subprocess.STDOUT,
            )
        built = sorted(wheels.glob(f"llama_cpp_python-{LLAMA_CPP_VERSION}-*.whl"))
        if result.returncode != 0 or not built:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
            raise OfflineError(f"engine: building llama-cpp-python failed (full log: {log}):\n{tail}")
    say(f"engine: installing {built[-1].name} with its server extras")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--find-links", str(wheels),
         f"llama-cpp-python[server]=={LLAMA_CPP_VERSION}"],
        capture_output=True, text=True, env=os.environ | {"CMAKE_ARGS": cmake_args()},
    )
    if result.returncode != 0 or not engine_installed():
        raise OfflineError(f"engine: installing llama-cpp-python failed:\n{result.stderr[-2000:]}")
