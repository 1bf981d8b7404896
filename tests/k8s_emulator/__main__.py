"""``python -m tests.k8s_emulator --port 6443 --flavour openshift``: serve until Ctrl+C and
write a kubeconfig for kubectl."""

from __future__ import annotations

import argparse
import threading
from pathlib import Path

from tests.k8s_emulator.emulator import start_emulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the Kubernetes API emulator on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=6443, help="TCP port (0 picks a free one)")
    parser.add_argument("--flavour", choices=("kubernetes", "openshift"), default="kubernetes")
    parser.add_argument(
        "--kubeconfig",
        type=Path,
        default=Path("emulator.kubeconfig"),
        help="where to write the kubeconfig",
    )
    parser.add_argument(
        "--history-size",
        type=int,
        default=1000,
        help="watch events kept; older resourceVersions get 410",
    )
    args = parser.parse_args(argv)
    emulator = start_emulator(flavour=args.flavour, port=args.port, history_size=args.history_size)
    emulator.write_kubeconfig(args.kubeconfig)
    print(f"emulator ({args.flavour}) serving at {emulator.url}")
    print(
        f"kubeconfig: {args.kubeconfig.resolve()}  (e.g. kubectl --kubeconfig {args.kubeconfig} get nodes)"
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
