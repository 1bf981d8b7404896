"""``budcluster model ...`` and ``python -m budcluster.transfer``: output, exit codes, the bar."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from budcluster.cli.app import app
from budcluster.transfer import MANIFEST_NAME, Manifest, build_manifest
from budcluster.transfer.console import (
    EXIT_PERMANENT,
    EXIT_TEMPORARY,
    human_bytes,
    run_transfer_command,
)
from tests.support.prefect_server import free_port
from tests.transfer.model_files import SMALL_MODEL, write_model

runner = CliRunner()


def test_model_manifest_json_and_text(model_dir: tuple[Path, dict[str, bytes]]) -> None:
    root, contents = model_dir
    as_json = runner.invoke(app, ["model", "manifest", str(root), "--json"])
    assert as_json.exit_code == 0, as_json.output
    assert Manifest.from_json(as_json.stdout) == build_manifest(root)
    text = runner.invoke(app, ["model", "manifest", str(root)])
    assert text.exit_code == 0
    assert f"{len(contents)} files" in text.stdout
    assert build_manifest(root).sha256() in text.stdout


def test_model_transfer_json_then_rerun(
    model_dir: tuple[Path, dict[str, bytes]], tmp_path: Path
) -> None:
    root, contents = model_dir
    dest = tmp_path / "dest"
    first = runner.invoke(
        app, ["model", "transfer", str(root), str(dest), "--workers", "2", "--json"]
    )
    assert first.exit_code == 0, first.output
    body = json.loads(first.stdout)
    assert body["files_copied"] == len(contents) and body["changed"] is True
    assert (dest / MANIFEST_NAME).is_file()
    again = runner.invoke(app, ["model", "transfer", str(root), str(dest)])
    assert again.exit_code == 0
    assert f"{len(contents)} already in place" in again.stdout


def test_unsafe_model_exits_2_with_the_path_in_the_message(tmp_path: Path) -> None:
    root = tmp_path / "model"
    write_model(root, {"config.json": 10})
    (root / "evil").symlink_to("/etc/passwd")
    result = runner.invoke(app, ["model", "transfer", str(root), str(tmp_path / "d"), "--json"])
    assert result.exit_code == EXIT_PERMANENT
    error = json.loads(result.stdout)
    assert error["error"] == "UnsafeModelPath" and error["retryable"] is False
    assert "evil" in error["message"] and "/etc/passwd" in result.stderr
    manifest = runner.invoke(app, ["model", "manifest", str(root)])
    assert manifest.exit_code == EXIT_PERMANENT and "evil" in manifest.stderr


def test_unreachable_s3_exits_75_so_callers_retry(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    env = {
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
        "BUDCLUSTER_S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
    }
    code = run_transfer_command(
        "s3://b/p", tmp_path / "d", workers=1, as_json=True, env=env, stdout=out, stderr=err
    )
    assert code == EXIT_TEMPORARY
    assert json.loads(out.getvalue())["retryable"] is True


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_is_drawn_only_on_a_terminal(tmp_path: Path) -> None:
    root = tmp_path / "model"
    write_model(root, SMALL_MODEL)
    terminal, pipe = _Terminal(), io.StringIO()
    for err, dest in ((terminal, "a"), (pipe, "b")):
        code = run_transfer_command(
            str(root),
            tmp_path / dest,
            workers=2,
            as_json=False,
            env={},
            stdout=io.StringIO(),
            stderr=err,
        )
        assert code == 0
    drawn = terminal.getvalue()
    assert drawn.startswith("\r[") and drawn.endswith("\n")
    final = drawn.rstrip("\n").rsplit("\r", 1)[-1]
    assert "100.0%" in final and f"files {len(SMALL_MODEL)}/{len(SMALL_MODEL)}" in final
    assert "#" * 30 in final
    assert pipe.getvalue() == ""


def test_python_dash_m_entry(model_dir: tuple[Path, dict[str, bytes]], tmp_path: Path) -> None:
    root, contents = model_dir
    ok = subprocess.run(
        [sys.executable, "-m", "budcluster.transfer", str(root), str(tmp_path / "d"), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["files"] == len(contents)
    bad = subprocess.run(
        [sys.executable, "-m", "budcluster.transfer", str(root), "d", "--workers", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2 and "--workers" in bad.stderr


def test_human_bytes() -> None:
    assert human_bytes(512) == "512 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(3 * 1024**3) == "3.0 GiB"
