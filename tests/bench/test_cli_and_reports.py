"""``budcluster bench run`` / ``compare`` end to end, the report folder, and the store rows."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from budcluster.bench.testing_server import ServerBehaviour, StreamingServer
from budcluster.cli.app import app

runner = CliRunner()
LATENCY_KEYS = ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms", "schedule_delay_ms")


def bench_run(url: str, report_dir: Path, *extra: str) -> tuple[int, str, str]:
    args = ["bench", "run", "--url", url, "--model", "m", "--report-dir", str(report_dir)]
    result = runner.invoke(app, [*args, *extra])
    return result.exit_code, result.stdout, result.stderr


def only_folder(report_dir: Path) -> Path:
    (folder,) = report_dir.iterdir()
    return folder


def test_run_json_prints_only_the_summary_and_writes_the_report(
    tmp_path: Path, server_thread: Callable[..., StreamingServer]
) -> None:
    server = server_thread(ServerBehaviour(chunks=4, ttft_s=0.002))
    code, stdout, stderr = bench_run(
        server.url,
        tmp_path / "reports",
        "--profile", "concurrency:4",
        "--requests", "24",
        "--warmup", "2",
        "--slo", "ttft=1s,tpot=1s",
        "--name", "my run/1",
        "--no-store",
        "--json",
    )  # fmt: skip
    assert code == 0, stderr
    summary = json.loads(stdout)  # nothing but JSON on stdout
    assert summary["requests_completed"] == 24
    assert summary["requests_failed"] == 0
    assert summary["request_throughput"] > 0
    assert summary["output_token_throughput"] == pytest.approx(4 * summary["request_throughput"])
    assert summary["goodput"] == pytest.approx(summary["request_throughput"])
    for key in LATENCY_KEYS:
        assert {"mean", "p50", "p90", "p99", "max"} <= summary[key].keys()
    assert summary["ttft_ms"]["min"] >= 2.0  # the server waits 2 ms before the first chunk

    folder = only_folder(tmp_path / "reports")
    assert re.fullmatch(r"\d{8}T\d{6}Z_my-run-1", folder.name)
    assert json.loads((folder / "summary.json").read_text()) == summary
    frame = pd.read_csv(folder / "requests.csv")
    assert len(frame) == 26 and frame["warmup"].sum() == 2
    assert frame.loc[~frame["warmup"], "ttft_ms"].mean() == pytest.approx(
        summary["ttft_ms"]["mean"], abs=0.01
    )
    assert set(frame["output_tokens_source"].dropna()) == {"usage"}
    markdown = (folder / "report.md").read_text()
    assert "| TTFT |" in markdown and "follow vLLM" in markdown
    html = (folder / "report.html").read_text()
    assert html.count("<svg") == 6
    # Self-contained: no script, no stylesheet or image fetched from anywhere.
    assert "<script" not in html
    assert not re.search(r"(src|href)=\"(https?:)?//", html)


def test_run_without_json_prints_markdown_and_store_run_id(
    tmp_path: Path, server_thread: Callable[..., StreamingServer]
) -> None:
    server = server_thread(ServerBehaviour(chunks=2))
    url = f"sqlite:///{tmp_path / 'store.db'}"
    code, stdout, stderr = bench_run(
        server.url, tmp_path / "r", "--requests", "5", "--database-url", url
    )
    assert code == 0, stderr
    assert "# Benchmark bench" in stdout
    assert "Store run id: 1" in stdout

    from budcluster.store import Store
    from budcluster.store.benchmarks import load_run

    store = Store(url)
    with store.session() as session:
        stored = load_run(session, 1)
    store.dispose()
    assert len(stored.requests) == 5
    assert stored.info.url == server.url


def test_bad_spec_is_a_clear_error(tmp_path: Path) -> None:
    code, _, stderr = bench_run(
        "http://127.0.0.1:9", tmp_path, "--requests", "1", "--input-tokens", "lots"
    )
    assert code == 2
    assert "--input-tokens" in stderr and "uniform:A-B" in stderr


def write_summary(
    folder: Path, throughput: float, ttft_p99: float, error_rate: float = 0.0
) -> Path:
    folder.mkdir(parents=True)
    stats = {"mean": 1.0, "p50": 1.0, "p90": 1.0, "p99": 1.0, "max": 1.0}
    summary = {
        "request_throughput": throughput,
        "output_token_throughput": throughput * 10,
        "error_rate": error_rate,
        "levels": [{"label": "concurrency:8"}],
        **{key: dict(stats) for key in LATENCY_KEYS},
    }
    summary["ttft_ms"]["p99"] = ttft_p99
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def test_compare_flags_regressions_and_exits_non_zero(tmp_path: Path) -> None:
    base = write_summary(tmp_path / "a", throughput=100, ttft_p99=50)
    same = write_summary(tmp_path / "b", throughput=95, ttft_p99=54)
    slower = write_summary(tmp_path / "c", throughput=100, ttft_p99=60)
    flaky = write_summary(tmp_path / "d", throughput=100, ttft_p99=50, error_rate=0.05)

    ok = runner.invoke(app, ["bench", "compare", str(base), str(same)])
    assert ok.exit_code == 0, ok.output
    assert "no regression" in ok.stdout

    bad = runner.invoke(app, ["bench", "compare", str(base), str(slower)])
    assert bad.exit_code == 1
    assert re.search(r"ttft_ms\.p99 .* \+20\.0% .*REGRESSION", bad.stdout)

    loose = runner.invoke(
        app, ["bench", "compare", str(base), str(slower), "--thresholds", "ttft_ms.p99=25%"]
    )
    assert loose.exit_code == 0

    strict = runner.invoke(app, ["bench", "compare", str(base), str(same), "--threshold", "3"])
    assert strict.exit_code == 1  # throughput -5% and TTFT +8% both beyond 3%

    errors = runner.invoke(app, ["bench", "compare", str(base), str(flaky)])
    assert errors.exit_code == 1
    assert re.search(r"error_rate .*\+5\.0pp .*REGRESSION", errors.stdout)


def test_compare_rejects_missing_runs_and_bad_thresholds(tmp_path: Path) -> None:
    base = write_summary(tmp_path / "a", throughput=100, ttft_p99=50)
    missing = runner.invoke(app, ["bench", "compare", str(base), str(tmp_path / "nope")])
    assert missing.exit_code == 2
    assert "summary.json" in missing.stderr
    bad = runner.invoke(app, ["bench", "compare", str(base), str(base), "--thresholds", "x=1"])
    assert bad.exit_code == 2
    assert "METRIC=PERCENT" in bad.stderr
