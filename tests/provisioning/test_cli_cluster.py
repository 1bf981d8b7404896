"""`budcluster cluster`: forms refused before anything starts, deregister on the store.
(provision/approve against a real server: tests/e2e_prefect/test_provision_approval.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from budcluster.cli.app import app
from budcluster.settings import get_settings
from budcluster.store import Store
from budcluster.store import deployments as dep
from budcluster.store.clusters import find_cluster, register_cluster
from budcluster.store.models_catalog import ModelFile, save_model


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "name: Bad_Name\nregion: eu-west-1\ncredentials_block: aws\nstate: {bucket: b1b}\n",
            "name: Value error, cluster name 'Bad_Name'",
        ),
        ("name: ok\nregion: eu-west-1\n", "credentials_block: Field required"),
        ("- a list\n", "must hold a mapping"),
        ("name: [unclosed\n", "is not UTF-8 YAML or JSON"),
    ],
)
def test_provision_refuses_a_bad_form_naming_the_field(
    tmp_path: Path, text: str, message: str
) -> None:
    form = tmp_path / "form.yaml"
    form.write_text(text)
    result = CliRunner().invoke(app, ["cluster", "provision", str(form)])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_approve_refuses_a_run_id_that_is_not_one() -> None:
    result = CliRunner().invoke(app, ["cluster", "approve", "last-one"])
    assert result.exit_code == 2 and "is not a flow run id" in result.output


def test_deregister_refuses_live_deployments_then_forgets_with_force(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    with store.session() as session:
        cluster = register_cluster(session, name="lab", kind="hosts", provider="onprem")
        model = save_model(
            session, name="m", source_uri="file:///m", format="gguf",
            files=[ModelFile("m.gguf", 1, "c" * 64)],
        )  # fmt: skip
        row = dep.create_deployment(session, cluster_id=cluster.id, model_id=model.id, name="q")
        dep.transition(session, row.id, "planning")
    monkeypatch.setenv("BUDCLUSTER_DATABASE_URL", store.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        refused = runner.invoke(app, ["cluster", "deregister", "lab"])
        assert refused.exit_code == 1
        assert "q (planning)" in refused.output and "--force" not in refused.output
        done = runner.invoke(app, ["cluster", "deregister", "lab", "--force", "--json"])
        assert done.exit_code == 0, done.output
        assert '"forgotten_deployments": ["q"]' in done.output
        missing = runner.invoke(app, ["cluster", "deregister", "lab"])
        assert missing.exit_code == 1 and "no cluster named 'lab'" in missing.output
    finally:
        get_settings.cache_clear()
    with store.session() as session:
        assert find_cluster(session, "lab") is None
