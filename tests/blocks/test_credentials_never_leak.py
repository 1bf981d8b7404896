"""A kubeconfig saved through the CLI never appears in plaintext outside memory.

The canary is a random token inside the kubeconfig. After the CLI saves the block
and a real flow run loads it and builds an API client, the canary must be absent
from the Prefect database file, the Prefect API (include_secrets=true), every log,
and the results store, while loading the block with the right key returns it.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.support.prefect_server import PrefectServer

BUDCLUSTER = str(Path(sys.executable).with_name("budcluster"))

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster:
    server: https://10.0.0.1:6443
    insecure-skip-tls-verify: true
contexts:
- name: lab-admin
  context: {{cluster: lab, user: admin}}
current-context: lab-admin
users:
- name: admin
  user:
    token: {canary}
"""

FLOW_SCRIPT = """
import logging
from prefect import flow, get_run_logger
from blocks.kubeconfig import KubeconfigCredentials

@flow(log_prints=True)
def use_credentials():
    logger = get_run_logger()
    creds = KubeconfigCredentials.load("c1")
    client = creds.get_api_client()
    logger.debug("loaded block %r", creds)
    print("api host", client.configuration.host)
    return client.configuration.host

print("RESULT", use_credentials())
"""


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=180)


def api(server: PrefectServer, method: str, path: str, body: object | None = None) -> str:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"{server.api_url}{path}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(response.read().decode())


@pytest.fixture(scope="module")
def saved(prefect_server: PrefectServer, workdir: Path) -> dict[str, object]:
    canary = f"CANARY-{secrets.token_hex(12)}"
    kubeconfig = workdir / "some.kubeconfig"
    kubeconfig.write_text(KUBECONFIG.format(canary=canary))
    env = prefect_server.env(
        BUDCLUSTER_KEYS_DIR=str(workdir / "crypto-keys"),
        BUDCLUSTER_DATA_DIR=str(workdir / "data"),
        # Explicit, so a store URL left in the environment by another test cannot win.
        BUDCLUSTER_DATABASE_URL=f"sqlite:///{workdir / 'data' / 'budcluster.db'}",
    )
    outputs = []
    for args in (
        [BUDCLUSTER, "keys", "init"],
        [BUDCLUSTER, "credentials", "add-kubeconfig", "c1", str(kubeconfig)],
        [BUDCLUSTER, "credentials", "list", "--json"],
        [BUDCLUSTER, "db", "upgrade"],
    ):
        done = run(args, env, workdir)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout + done.stderr)
    flow_run = run(
        [sys.executable, "-c", FLOW_SCRIPT], env | {"PYTHONPATH": str(Path.cwd())}, workdir
    )
    assert flow_run.returncode == 0, flow_run.stderr[-3000:]
    outputs.append(flow_run.stdout + flow_run.stderr)
    return {"canary": canary, "env": env, "outputs": outputs, "flow_stdout": flow_run.stdout}


def test_the_flow_really_used_the_kubeconfig(saved: dict[str, object]) -> None:
    # Control: the server URL from the kubeconfig reached the client, so the block
    # was opened; the leak checks below are therefore not vacuous.
    assert "RESULT https://10.0.0.1:6443" in str(saved["flow_stdout"])


def test_canary_absent_from_prefect_database(
    saved: dict[str, object], prefect_server: PrefectServer
) -> None:
    assert prefect_server.database_path is not None
    canary = str(saved["canary"]).encode()
    files = [p for p in prefect_server.database_path.parent.glob("prefect.db*") if p.is_file()]
    assert files, "the Prefect database file was not found"
    for path in files:
        assert canary not in path.read_bytes(), f"canary found in {path}"
    # The envelope itself is in the database: the block really was stored there.
    assert any(b"bsc1." in p.read_bytes() for p in files)


def test_canary_absent_from_api_even_with_secrets(
    saved: dict[str, object], prefect_server: PrefectServer
) -> None:
    canary = str(saved["canary"])
    documents = api(prefect_server, "POST", "/block_documents/filter", {"include_secrets": True})
    assert "bud-kubeconfig-credentials" in documents and "bsc1." in documents
    assert canary not in documents
    for document in json.loads(documents):
        single = api(
            prefect_server, "GET", f"/block_documents/{document['id']}?include_secrets=true"
        )
        assert canary not in single


def test_canary_absent_from_logs(saved: dict[str, object], prefect_server: PrefectServer) -> None:
    canary = str(saved["canary"])
    logs = api(prefect_server, "POST", "/logs/filter", {"limit": 200})
    assert "api host" in logs  # the flow's own logs reached the server
    assert canary not in logs
    for output in saved["outputs"]:  # type: ignore[attr-defined]
        assert canary not in output
    assert canary not in prefect_server.log_path.read_text()
    for path in prefect_server.home.rglob("*"):
        if path.is_file():
            assert canary.encode() not in path.read_bytes(), f"canary found in {path}"


def test_canary_absent_from_results_store_and_disk(saved: dict[str, object], workdir: Path) -> None:
    canary = str(saved["canary"]).encode()
    assert (workdir / "data" / "budcluster.db").is_file()  # the SQLite store was created
    for path in workdir.rglob("*"):
        if path.is_file() and path.name != "some.kubeconfig":
            assert canary not in path.read_bytes(), f"canary found in {path}"


def test_block_opens_with_the_right_key_and_fails_clearly_with_another(
    saved: dict[str, object], workdir: Path
) -> None:
    env = dict(saved["env"])  # type: ignore[call-overload]
    script = (
        "from blocks.kubeconfig import KubeconfigCredentials\n"
        "import sys\n"
        "cfg = KubeconfigCredentials.load('c1').get_kubeconfig_dict()\n"
        "sys.exit(0 if cfg['users'][0]['user']['token'] == sys.argv[1] else 3)\n"
    )
    env["PYTHONPATH"] = str(Path.cwd())
    right = run([sys.executable, "-c", script, str(saved["canary"])], env, workdir)
    assert right.returncode == 0, right.stderr[-2000:]

    other_keys = workdir / "other-keys"
    assert run([BUDCLUSTER, "keys", "init", "--dir", str(other_keys)], env, workdir).returncode == 0
    wrong = run(
        [sys.executable, "-c", script, "x"], env | {"BUDCLUSTER_KEYS_DIR": str(other_keys)}, workdir
    )
    assert wrong.returncode != 0
    assert "WrongKeyError" in wrong.stderr
    assert "was sealed with key" in wrong.stderr
    assert str(saved["canary"]) not in wrong.stderr
