"""``python -m budcluster.transfer SOURCE_URI DEST_DIR [--workers N] [--json]``.

The entry the stage_model playbook runs on each target host. S3 keys come from the
environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, BUDCLUSTER_S3_ENDPOINT_URL),
never from argv, where any user of the host could read them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from budcluster.transfer.console import run_transfer_command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m budcluster.transfer",
        description="Copy a model (directory, s3://bucket/prefix, hf://org/name[@rev]) into "
        "DEST_DIR, verify every file's sha256 and write .budcluster-manifest.json last.",
    )
    parser.add_argument("source_uri")
    parser.add_argument("dest_dir", type=Path)
    parser.add_argument("--workers", type=int, default=4, help="files copied at once (default 4)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    return run_transfer_command(
        args.source_uri, args.dest_dir, workers=args.workers, as_json=args.json
    )


if __name__ == "__main__":
    sys.exit(main())
