"""A tiny OpenAI-shaped stand-in runtime for the hosts tests: serves /health on --port.

It refuses to start unless --model names an existing directory, so a bad argument is a
real startup failure (exit code 2 from argparse, or 3 for a missing model).
"""

from __future__ import annotations

import argparse
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"status": "ok"}' if self.path == "/health" else b"{}"
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    if not Path(args.model).is_dir():
        print(f"model directory {args.model} does not exist", file=sys.stderr)
        return 3
    print(f"serving {args.model} on {args.host}:{args.port}", flush=True)
    ThreadingHTTPServer((args.host, args.port), Health).serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
