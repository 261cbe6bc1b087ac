"""``psysim-serve``: serve the offline model (or any GGUF) on 127.0.0.1 until Ctrl-C, and print
the environment for pointing Inspect at it through the ``vllm/`` provider."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from psysim._version import add_version_argument
from psysim.offline.cache import OfflineError
from psysim.offline.engine import ensure_engine
from psysim.offline.model import QWEN_CODER_1_5B, ensure_model
from psysim.offline.server import LlamaCppServer, stop_on_sigterm


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="psysim-serve", description=__doc__)
    add_version_argument(parser)
    parser.add_argument("--model", type=Path, default=None, help="a GGUF file (default: the offline model)")
    parser.add_argument("--alias", default=None, help="served model name (default: the offline model's)")
    parser.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (default 8000)")
    parser.add_argument("--n-ctx", type=int, default=4096, help="context window in tokens (default 4096)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    args = parser.parse_args(argv)
    stop_on_sigterm()
    try:
        ensure_engine()
        path = args.model or ensure_model()
        alias = args.alias or (QWEN_CODER_1_5B.name if args.model is None else path.stem)
        with LlamaCppServer(path, alias=alias, port=args.port, n_ctx=args.n_ctx, n_threads=args.threads) as server:
            print(f"Serving {alias} at {server.base_url}. In another shell:\n"
                  f"  export VLLM_BASE_URL={server.base_url} VLLM_API_KEY=local\n"
                  f"  inspect eval tasks/iterative_feedback.py --model vllm/{alias} -T rating_format=json_object\n"
                  "Ctrl-C stops the server.")
            while server.process is not None and server.process.poll() is None:
                time.sleep(1)
            print("psysim-serve: the server exited; see its log", server.log_path, file=sys.stderr)
            return 1
    except OfflineError as ex:
        print(f"psysim-serve: error: {ex}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\npsysim-serve: stopped")
        return 0


if __name__ == "__main__":
    sys.exit(main())
