"""``python -m budcluster.transfer SOURCE_URI DEST_DIR [--workers N] [--json] [--credentials-stdin]``.

The entry the stage_model playbook runs on each target host. S3 keys come from the
environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, BUDCLUSTER_S3_ENDPOINT_URL) or, with
``--credentials-stdin``, from a JSON object of those names on stdin, which the playbook
uses: never from argv nor, then, the environment, where other users of the host could
read them (``ps``, ``/proc/<pid>/environ``).

While it copies, ``DEST_DIR/.budcluster-progress.json`` says how far it has got (at most
once a second); the hosts target polls it. It is removed when the command ends.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TextIO

from budcluster.transfer.console import (
    EXIT_PERMANENT,
    ProgressFile,
    read_credentials,
    run_transfer_command,
)


def main(argv: list[str] | None = None, stdin: TextIO | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m budcluster.transfer",
        description="Copy a model (directory, s3://bucket/prefix, hf://org/name[@rev]) into "
        "DEST_DIR, verify every file's sha256 and write .budcluster-manifest.json last.",
    )
    parser.add_argument("source_uri")
    parser.add_argument("dest_dir", type=Path)
    parser.add_argument("--workers", type=int, default=4, help="files copied at once (default 4)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    parser.add_argument(
        "--credentials-stdin",
        action="store_true",
        help="read the source's variables as a JSON object from stdin, e.g. "
        '{"AWS_ACCESS_KEY_ID": "...", "AWS_SECRET_ACCESS_KEY": "..."}',
    )
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    env: dict[str, str] | None = None
    if args.credentials_stdin:
        try:
            env = {**os.environ, **read_credentials(stdin or sys.stdin)}
        except ValueError as exc:
            if args.json:
                error = {"error": "InvalidCredentials", "message": str(exc), "retryable": False}
                print(json.dumps(error))
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_PERMANENT
    progress_file = ProgressFile(args.dest_dir)
    # A killed run's file would be read as this run's until the first write replaces it.
    progress_file.remove()
    try:
        return run_transfer_command(
            args.source_uri,
            args.dest_dir,
            workers=args.workers,
            as_json=args.json,
            env=env,
            progress=progress_file,
        )
    finally:
        progress_file.remove()


if __name__ == "__main__":
    sys.exit(main())
