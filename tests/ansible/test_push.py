"""What the controller prepares for a host reached over SSH: the model's file list with
each file's sha256, and the executable to install (budcluster/targets/hosts/push.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from budcluster.targets.hosts.push import controller_model, executable_install
from budcluster.transfer.manifest import build_manifest


def test_a_controller_directory_is_listed_with_each_files_sha256(tmp_path: Path) -> None:
    model = tmp_path / "m"
    (model / "sub").mkdir(parents=True)
    (model / "config.json").write_text("{}\n")
    (model / "sub" / "w.bin").write_bytes(b"\x00" * 1000)
    (model / ".budcluster-manifest.json").write_text("left by an earlier transfer\n")
    pushed = controller_model(str(model))
    assert pushed is not None
    assert pushed.files == [
        {
            "path": "config.json",
            "src": str(model / "config.json"),
            "size": 3,
            "sha256": hashlib.sha256(b"{}\n").hexdigest(),
        },
        {
            "path": "sub/w.bin",
            "src": str(model / "sub" / "w.bin"),
            "size": 1000,
            "sha256": hashlib.sha256(b"\x00" * 1000).hexdigest(),
        },
    ]
    # The same manifest budcluster.transfer writes, so both paths record equal digests.
    assert pushed.manifest == build_manifest(model)
    extravars = pushed.extravars()
    assert extravars["push_manifest_sha256"] == build_manifest(model).sha256()
    assert extravars["push_bytes_total"] == 1003
    assert extravars["push_manifest_json"] == build_manifest(model).to_json()


def test_file_uris_are_controller_directories_too(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    pushed = controller_model(f"file://{tmp_path}")
    assert pushed is not None and [f["path"] for f in pushed.files] == ["a.txt"]


def test_sources_the_host_reads_itself_are_not_pushed(tmp_path: Path) -> None:
    assert controller_model("s3://bucket/models/tiny") is None
    # Not a directory here: the path names one on the host.
    assert controller_model(str(tmp_path / "absent")) is None
    assert controller_model("gs://bucket/x") is None


def test_an_executable_here_is_installed_by_its_sha256(tmp_path: Path) -> None:
    binary = tmp_path / "llama-server"
    binary.write_bytes(b"\x7fELF fake")
    digest = hashlib.sha256(b"\x7fELF fake").hexdigest()
    assert executable_install("llama-server", str(binary)) == {
        "name": "llama-server",
        "controller_path": str(binary),
        "sha256": digest,
        "dir": f"engines/llama-server-{digest[:16]}",
    }
    assert executable_install("llama-server", str(tmp_path / "absent")) is None
