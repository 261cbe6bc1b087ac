"""nginx (from the Debian packages) as the load balancer in front of several OpenAI-compatible
replicas (vLLM servers, or the fake ones of :mod:`psysim.testing.fake_server` in benchmarks and tests).

Nothing is balanced here: this module writes an nginx configuration (an ``upstream`` of the
replicas with ``least_conn``, keep-alive connections to them, no buffering and long timeouts
for long generations) and runs nginx with it in the foreground on 127.0.0.1, stopping it on
exit and after ``max_seconds`` whatever the caller does. Inspect's ``vllm/`` provider reaches
every replica through the one base URL.

    python -m psysim.study.nginx_balancer --print-config 10.0.0.1:8000 10.0.0.2:8000   # for a cluster
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse

NGINX = "nginx"


def nginx_path() -> str | None:
    """The nginx binary (on PATH or in /usr/sbin), or None when it is not installed."""
    return shutil.which(NGINX) or shutil.which(NGINX, path="/usr/sbin:/usr/local/sbin")


def balancer_config(upstreams: list[str], port: int, host: str = "127.0.0.1", prefix: str = ".") -> str:
    """An nginx configuration balancing ``upstreams`` (``host:port``) behind ``host:port``.

    ``least_conn`` sends each request to the replica with the fewest open requests, which
    suits generations of very different lengths better than round robin.
    """
    servers = "\n".join(f"        server {upstream} max_fails=0;" for upstream in upstreams)
    return f"""worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    upstream replicas {{
        least_conn;
{servers}
        keepalive 256;
    }}
    server {{
        listen {host}:{port};
        client_max_body_size 64m;
        location / {{
            proxy_pass http://replicas;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
        }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def nginx_balancer(base_urls: list[str], max_seconds: float = 3600.0) -> Iterator[str]:
    """Run nginx in front of ``base_urls`` (``http://host:port/v1``); yields the balancer's base URL.

    Raises:
        FileNotFoundError: nginx is not installed (``apt-get install nginx-light``).
        RuntimeError: nginx did not start (with the tail of its error log).
    """
    binary = nginx_path()
    if binary is None:
        raise FileNotFoundError("nginx is not installed (Debian: apt-get install -y nginx-light)")
    upstreams = [urlparse(url).netloc for url in base_urls]
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="psysim-nginx-") as prefix:
        config = Path(prefix) / "nginx.conf"
        config.write_text(balancer_config(upstreams, port, prefix=prefix))
        process = subprocess.Popen([binary, "-p", prefix, "-c", str(config)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        watchdog = threading.Timer(max_seconds, process.terminate)  # stops by itself
        watchdog.daemon = True
        watchdog.start()
        try:
            base_url = f"http://127.0.0.1:{port}/v1"
            _wait_until_listening(process, base_url, Path(prefix) / "error.log")
            yield base_url
        finally:
            watchdog.cancel()
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_listening(process: subprocess.Popen, base_url: str, error_log: Path, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited ({process.returncode}): {_tail(error_log, process)}")
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nginx did not answer within {seconds:.0f} s: {_tail(error_log, process)}")


def _tail(error_log: Path, process: subprocess.Popen) -> str:
    text = error_log.read_text() if error_log.exists() else ""
    if process.poll() is not None and process.stderr is not None:
        text += process.stderr.read()
    return " | ".join(text.strip().splitlines()[-3:]) or "(no output)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m psysim.study.nginx_balancer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("upstreams", nargs="+", help="replicas as host:port")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--print-config", action="store_true", help="print the configuration and exit")
    args = parser.parse_args(argv)
    prefix = "/tmp/psysim-nginx"
    print(balancer_config(args.upstreams, args.port, args.host, prefix=prefix))
    if not args.print_config:
        print(f"# run: mkdir -p {prefix} && nginx -p {prefix} -c <this file>", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
