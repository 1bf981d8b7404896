"""deployments.yaml: validation that names the entry and the field, spec hashes, schedules."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from budcluster.catalogue import BaselineKind, load_catalogue, parse_catalogue
from budcluster.errors import ConfigurationError

PROJECT = Path(__file__).resolve().parents[2]


def _entry(**changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": "qwen-cpu",
        "cluster": "lab",
        "model": {"uri": "/models/qwen"},
        "runtime": {"max_model_len": 2048},
    }
    entry.update(changes)
    return entry


def _error(raw: Any) -> str:
    with pytest.raises(ConfigurationError) as caught:
        parse_catalogue(raw, "deployments.yaml")
    return str(caught.value)


def test_the_project_catalogue_is_valid_and_matches_the_demo_deploy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.demo import demo_request

    catalogue = load_catalogue(PROJECT / "deployments.yaml")
    demo = catalogue.entry("demo")
    assert demo.cluster == "this-machine"
    # The request flows/demo.py sends for the demo model (which has a GGUF, so `auto`
    # serves it with llama.cpp): reconciling after the demo changes nothing.
    model_dir = tmp_path / "data" / "models" / "demo-tiny"
    model_dir.mkdir(parents=True)
    (model_dir / "demo-tiny.gguf").touch()
    monkeypatch.chdir(tmp_path)
    assert demo.spec_hash() == demo_request("data/models/demo-tiny").spec_hash()
    assert demo.benchmark is not None
    assert demo.benchmark.baseline.kind is BaselineKind.PREVIOUS


def test_an_error_names_the_entry_by_index_and_name_and_the_field() -> None:
    message = _error({"deployments": [_entry(), _entry(name="llama", runtime={"port": 80})]})
    assert "deployments[1] ('llama')" in message
    assert "field runtime.port" in message
    assert "greater than 1024" in message
    assert "deployments[0]" not in message


def test_every_problem_is_listed_not_only_the_first() -> None:
    message = _error(
        {
            "deployments": [
                _entry(hardware={"device": "tpu"}),
                _entry(name="b", model={"uri": "  "}),
            ]
        }
    )
    assert "2 problem(s)" in message
    assert "deployments[0] ('qwen-cpu'): field hardware.device" in message
    assert "deployments[1] ('b'): field model.uri" in message


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"name": "Qwen_CPU"}, "field name", "lowercase"),
        ({"schedule": "every hour"}, "field schedule", "not a cron expression"),
        ({"surprise": 1}, "field surprise", "Extra inputs"),
        (
            {"benchmark": {"baseline": {"kind": "pinned"}}},
            "field benchmark.baseline",
            "exactly one of run_id or report",
        ),
        (
            {"benchmark": {"baseline": {"kind": "previous", "run_id": 3}}},
            "field benchmark.baseline",
            "apply to kind 'pinned' only",
        ),
        (
            {"benchmark": {"baseline": {"thresholds": "ttft=5%"}}},
            "field benchmark.baseline.thresholds",
            "METRIC=PERCENT",
        ),
        (
            {"benchmark": {"profile": {"profile": "warp:9"}}},
            "field benchmark.profile",
            "unknown profile 'warp'",
        ),
        (
            {"runtime": {"replicas": 0}},
            "field runtime.replicas",
            "replicas 0 is not a replica count: give a positive integer (1, 2, ...) or 'auto'",
        ),
    ],
)
def test_bad_fields_are_reported_with_their_path(
    changes: dict[str, Any], field: str, words: str
) -> None:
    message = _error({"deployments": [_entry(**changes)]})
    assert f"deployments[0] ('{changes.get('name', 'qwen-cpu')}'): {field}" in message
    assert words in message


def test_names_are_unique_per_cluster_only() -> None:
    parse_catalogue({"deployments": [_entry(), _entry(cluster="other")]})
    message = _error({"deployments": [_entry(), _entry()]})
    assert "deployments[1] ('qwen-cpu') repeats deployments[0]" in message


def test_top_level_shape_and_file_errors(tmp_path: Path) -> None:
    assert "top level must be a mapping" in _error(["a"])
    assert "field prune" in _error({"prune": "maybe"})
    with pytest.raises(ConfigurationError, match="no catalogue file"):
        load_catalogue(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("deployments: [\n")
    with pytest.raises(ConfigurationError, match="not valid YAML"):
        load_catalogue(broken)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ConfigurationError, match="is empty"):
        load_catalogue(empty)
    assert parse_catalogue(None).deployments == []


def test_spec_hash_follows_what_runs_and_ignores_the_benchmark() -> None:
    base = parse_catalogue({"deployments": [_entry()]}).deployments[0]
    request = base.deploy_request()
    assert base.spec_hash() == request.spec_hash()
    assert request.max_model_len == 2048
    benchmarked = parse_catalogue(
        {"deployments": [_entry(benchmark={"profile": {"requests": 8}}, schedule="0 * * * *")]}
    ).deployments[0]
    assert benchmarked.spec_hash() == base.spec_hash()
    for change in (
        {"runtime": {"max_model_len": 4096}},
        {"hardware": {"device": "cuda"}},
        {"model": {"uri": "/models/qwen-v2"}},
        {"runtime": {"max_model_len": 2048, "replicas": 2}},
        {"runtime": {"max_model_len": 2048, "replicas": "auto"}},
    ):
        changed = parse_catalogue({"deployments": [_entry(**change)]}).deployments[0]
        assert changed.spec_hash() != base.spec_hash(), change


def test_replicas_reach_the_deploy_request() -> None:
    """Absent: one replica, as the deploy form's default; a count or auto passes through."""
    for given, wanted in ((None, 1), (3, 3), ("auto", "auto")):
        runtime: dict[str, Any] = {"max_model_len": 2048}
        if given is not None:
            runtime["replicas"] = given
        entry = parse_catalogue({"deployments": [_entry(runtime=runtime)]}).deployments[0]
        request = entry.deploy_request()
        assert request.replicas == wanted and request.plan_request().replicas == wanted
        assert entry.spec_hash() == request.spec_hash()


def test_schedules_are_due_when_the_cron_fired_within_the_window() -> None:
    entry = parse_catalogue({"deployments": [_entry(schedule="0 2 * * *")]}).deployments[0]
    hour = 3600.0
    assert entry.is_due(datetime(2026, 3, 1, 2, 30, tzinfo=UTC), hour)
    assert entry.is_due(datetime(2026, 3, 1, 2, 0, tzinfo=UTC), hour)
    assert not entry.is_due(datetime(2026, 3, 1, 3, 1, tzinfo=UTC), hour)
    assert not entry.is_due(datetime(2026, 3, 1, 1, 59, tzinfo=UTC), hour)
    unscheduled = parse_catalogue({"deployments": [_entry()]}).deployments[0]
    assert unscheduled.is_due(datetime(2026, 3, 1, 13, 7, tzinfo=UTC), hour)
