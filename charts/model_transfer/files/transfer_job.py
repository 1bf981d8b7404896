"""Entry of the model_transfer Job (shipped in the chart).

Same arguments, output and exit codes as ``python -m budcluster.transfer SOURCE DEST
--workers N --json`` (0 done, 2 permanent, 75 retry), plus a progress ConfigMap
(PROGRESS_CONFIGMAP, key ``progress.json``: files, bytes, eta_s, state) written every
PROGRESS_INTERVAL_SECONDS and once at the end. A rerun resumes from the verified files.
"""

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

from kubernetes import client, config
from kubernetes.client.rest import ApiException

from budcluster.errors import BudClusterError, TemporaryError
from budcluster.transfer.engine import transfer_model
from budcluster.transfer.uri import parse_source

API_TIMEOUT_S = 30
NAMESPACE = os.environ["POD_NAMESPACE"]
CONFIGMAP = os.environ["PROGRESS_CONFIGMAP"]
INTERVAL_S = float(os.environ.get("PROGRESS_INTERVAL_SECONDS", "5"))
RELEASE = os.environ.get("RELEASE_NAME", "")
LABELS = {"app.kubernetes.io/name": "model-transfer"} | (
    {"app.kubernetes.io/instance": RELEASE, "budcluster.io/release": RELEASE} if RELEASE else {}
)


class ProgressWriter:
    def __init__(self) -> None:
        config.load_incluster_config()
        self._api = client.CoreV1Api()
        self._last = 0.0
        self._lock = threading.Lock()

    def write(self, payload: dict) -> None:
        body = client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=CONFIGMAP, labels=LABELS),
            data={"progress.json": json.dumps(payload, sort_keys=True)},
        )
        try:
            self._api.replace_namespaced_config_map(
                CONFIGMAP, NAMESPACE, body, _request_timeout=API_TIMEOUT_S
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            self._api.create_namespaced_config_map(NAMESPACE, body, _request_timeout=API_TIMEOUT_S)

    def __call__(self, progress) -> None:  # a TransferProgress
        now = time.monotonic()
        with self._lock:
            if now - self._last < INTERVAL_S:
                return
            self._last = now
        rate = progress.bytes_done / progress.elapsed_s if progress.elapsed_s > 0 else 0.0
        left = progress.bytes_total - progress.bytes_done
        try:
            self.write(
                {
                    "state": "running",
                    "files_total": progress.files_total,
                    "files_done": progress.files_done,
                    "bytes_total": progress.bytes_total,
                    "bytes_done": progress.bytes_done,
                    "elapsed_s": round(progress.elapsed_s, 1),
                    "eta_s": round(left / rate, 1) if rate > 0 else None,
                }
            )
        except Exception as exc:  # progress is advisory; the copy goes on
            print(f"progress not written: {exc}", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("source_uri")
    parser.add_argument("dest_dir", type=Path)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    writer = ProgressWriter()
    try:
        result = transfer_model(
            parse_source(args.source_uri, os.environ),
            args.dest_dir,
            workers=args.workers,
            progress=writer,
        )
    except BudClusterError as exc:
        retryable = isinstance(exc, TemporaryError)
        error = {"error": type(exc).__name__, "message": str(exc), "retryable": retryable}
        print(json.dumps(error), flush=True)
        writer.write({"state": "retrying" if retryable else "failed", **error})
        return 75 if retryable else 2
    summary = result.to_dict()
    writer.write(
        {
            "state": "done",
            "files_total": summary["files"],
            "files_done": summary["files"],
            "bytes_total": summary["bytes_total"],
            "bytes_done": summary["bytes_total"],
            "eta_s": 0,
            "result": summary,
        }
    )
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
