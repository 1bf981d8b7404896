"""The quantize-model flow end to end: a real run in a child process with its own Prefect
home and store, then the catalogue rows it wrote; and its refusal of GPU methods on CPU."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from budcluster.demo_model import DemoModel
from budcluster.store import Store
from budcluster.store.migrate import upgrade
from budcluster.store.models_catalog import get_model

_RUN = """
import json, sys
from flows.quantize_model import quantize_model
from budcluster.job_requests import QuantizeModelRequest
out = {}
result = quantize_model(QuantizeModelRequest(source=sys.argv[1], quantization="Q4_K_M"))
out["q4"] = {"model_id": result["model_id"], "gguf": result["gguf"]}
try:
    quantize_model(QuantizeModelRequest(source=sys.argv[1], quantization="AWQ"))
except Exception as exc:
    out["awq_refusal"] = str(exc)
print("RESULT " + json.dumps(out))
"""


def test_flow_records_a_linked_version_and_refuses_awq_without_a_gpu(
    demo_with_gguf: DemoModel, tmp_path: Path
) -> None:
    assert demo_with_gguf.gguf_file is not None
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    url = f"sqlite:///{data_dir / 'budcluster.db'}"
    upgrade(url)
    project = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "BUDCLUSTER_DATA_DIR": str(data_dir),
        "BUDCLUSTER_DATABASE_URL": url,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_API_URL": "",
        "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "true",
        # The ephemeral server's SQLite waits this long for a lock; its 10 s default ran out
        # once ("database is locked") under a full parallel run on 2 cores.
        "PREFECT_SERVER_DATABASE_TIMEOUT": "60",
        "PYTHONPATH": str(project),
    }
    done = subprocess.run(
        [sys.executable, "-c", _RUN, str(demo_with_gguf.gguf_file)],
        capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path, check=False,
    )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-3000:]
    out = json.loads(lines[-1].removeprefix("RESULT "))

    gguf = Path(out["q4"]["gguf"])
    assert gguf == data_dir / "quantized" / "demo-tiny.Q4_K_M" / "demo-tiny.Q4_K_M.gguf"
    assert (gguf.parent / ".budcluster-manifest.json").exists()
    assert not (demo_with_gguf.path / ".budcluster-manifest.json").exists()  # source untouched
    store = Store(url)
    with store.session() as session:
        version = get_model(session, out["q4"]["model_id"])
        lineage = version.config_facts["quantization"]
        parent = get_model(session, lineage["from_model_id"])
        assert version.format == "gguf" and version.source_uri == str(gguf.parent)
        assert version.manifest == [
            {"path": gguf.name, "size": gguf.stat().st_size,
             "sha256": hashlib.sha256(gguf.read_bytes()).hexdigest()}
        ]  # fmt: skip
        assert lineage["type"] == "Q4_K_M" and lineage["fallbacks"]
        assert parent.source_uri == str(demo_with_gguf.path)
        assert lineage["weight_bytes"] < lineage["from_weight_bytes"]
        assert version.config_facts["weight_bytes"] == lineage["weight_bytes"]
    store.engine.dispose()
    refusal = out["awq_refusal"]
    assert "quantization=AWQ" in refusal and "set cluster" in refusal
