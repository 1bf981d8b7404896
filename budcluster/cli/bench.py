"""``budcluster bench``: run a benchmark against an OpenAI-compatible endpoint; compare runs."""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from budcluster.bench.compare import (
    DEFAULT_THRESHOLD_PCT,
    compare_summaries,
    load_summary,
    parse_thresholds,
    render_changes,
)
from budcluster.bench.records import RequestRecord
from budcluster.bench.report import summary_dict, write_report
from budcluster.bench.report.writers import render_markdown
from budcluster.bench.runner import BenchmarkConfig, BenchmarkResult, OnRecord, run_benchmark
from budcluster.bench.specs import parse_profile, parse_slos, parse_token_spec
from budcluster.cli.errors import exits_on_error
from budcluster.errors import ConfigurationError
from budcluster.pricing import HourlyPrice, given_price
from budcluster.settings import get_settings

if TYPE_CHECKING:
    from budcluster.store import Store
    from budcluster.store.costs import CostPoint

app = typer.Typer(
    help="Benchmark OpenAI-compatible endpoints and compare runs.", no_args_is_help=True
)


@contextmanager
def _progress(config: BenchmarkConfig, enabled: bool) -> Iterator[OnRecord | None]:
    """A progress bar on stderr, only on a terminal; counts requests or seconds."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    by_count = config.max_requests is not None and config.profile.kind != "sweep"
    total = float(config.max_requests or 0) if by_count else config.duration_s
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[done]} done, {task.fields[failed]} failed"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(config.profile.label(), total=total, done=0, failed=0)
        counts = {"done": 0, "failed": 0}
        started = time.monotonic()

        def on_record(record: RequestRecord) -> None:
            counts["failed" if record.error_kind else "done"] += 1
            position = counts["done"] + counts["failed"] if by_count else time.monotonic() - started
            progress.update(task, completed=position, done=counts["done"], failed=counts["failed"])

        yield on_record


API_KEY_ENV = "OPENAI_API_KEY"


def _api_key(argv_key: str | None, key_file: Path | None) -> str | None:
    """The key from ``--api-key-file`` or OPENAI_API_KEY; never one given on argv.

    Any user of the machine can read a process's argv (ps, /proc/PID/cmdline), so the
    old ``--api-key VALUE`` is refused rather than used.
    """
    if argv_key is not None:
        raise ConfigurationError(
            f"--api-key on the command line is visible to every user of this machine (ps); "
            f"set {API_KEY_ENV} or pass --api-key-file FILE (mode 600) instead, and consider "
            "rotating the key you typed"
        )
    if key_file is None:
        return os.environ.get(API_KEY_ENV) or None
    return _read_key_file(key_file)


def _read_key_file(path: Path) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise ConfigurationError(
            f"--api-key-file {path}: cannot read it ({exc.strerror}); give a file holding "
            "only the key"
        ) from exc
    try:
        # Checked on the open descriptor, so a file swapped after the check is not read.
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigurationError(
                f"--api-key-file {path}: not a regular file; give a file holding only the key"
            )
        if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
            raise ConfigurationError(
                f"--api-key-file {path}: other users can read it or it is not yours (mode "
                f"{stat.S_IMODE(info.st_mode):03o}, uid {info.st_uid}); run 'chmod 600 {path}' "
                "as its owner"
            )
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read()
    finally:
        os.close(fd)
    key = data.decode("utf-8", errors="replace").strip()
    if not key:
        raise ConfigurationError(f"--api-key-file {path}: the file is empty; write the key in it")
    return key


def _open_store(database_url: str | None) -> Store:
    from budcluster.store import Store
    from budcluster.store.engine import EngineOptions

    settings = get_settings()
    url = database_url or settings.resolved_database_url()
    if database_url is None and url.startswith("sqlite:///"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return Store(url, EngineOptions.from_settings(settings))


def save_to_store(
    result: BenchmarkResult,
    database_url: str | None,
    deployment_id: int | None,
    price: HourlyPrice | None = None,
    pending_dir: Path | None = None,
) -> int:
    """Write the run's rows to the results store; returns the stored run id.

    With ``pending_dir`` (the report folder), a store that stays unavailable gets the run
    kept there for ``budcluster bench import``, and the error names the file.
    """
    from budcluster.store.benchmark_results import save_result

    store = _open_store(database_url)
    try:
        return save_result(result, store, deployment_id, price, pending_dir=pending_dir)
    finally:
        store.dispose()


@app.command()
@exits_on_error()
def run(
    url: str = typer.Option(..., "--url", help="Base URL of the server, e.g. http://host:8000."),
    model: str = typer.Option(..., "--model", help="Model name to send in each request."),
    api: str = typer.Option("completions", "--api", help="completions or chat."),
    profile: str = typer.Option(
        "concurrency:1",
        "--profile",
        help="concurrency:N, rate:R, poisson:R, gamma:R,BURSTINESS or sweep[:LEVELS].",
    ),
    duration: float | None = typer.Option(None, "--duration", help="Seconds per load level."),
    requests: int | None = typer.Option(None, "--requests", help="Requests per load level."),
    warmup: int = typer.Option(0, "--warmup", help="Warm-up requests, not measured."),
    input_tokens: str = typer.Option(
        "128", "--input-tokens", help="N, uniform:A-B or normal:M,SD[,MIN,MAX]."
    ),
    output_tokens: str = typer.Option(
        "128", "--output-tokens", help="Same forms as --input-tokens."
    ),
    dataset: Path | None = typer.Option(None, "--dataset", help="ShareGPT-format JSON file."),
    prompts_file: Path | None = typer.Option(None, "--prompts-file", help="One prompt per line."),
    tokenizer: str | None = typer.Option(
        None, "--tokenizer", help="Local tokenizer.json or model directory (never downloaded)."
    ),
    slo: str | None = typer.Option(None, "--slo", help="Goodput SLOs, e.g. ttft=200ms,tpot=50ms."),
    ignore_eos: bool = typer.Option(False, "--ignore-eos", help="Ask for exactly max_tokens."),
    request_timeout: float = typer.Option(600.0, "--request-timeout", help="Seconds per request."),
    seed: int = typer.Option(0, "--seed", help="Seed for prompts and arrival times."),
    processes: int = typer.Option(1, "--processes", help="Load-generating processes."),
    name: str = typer.Option("bench", "--name", help="Run name (used in the report folder)."),
    deployment_id: int | None = typer.Option(None, "--deployment-id", help="Store deployment id."),
    deployment_name: str | None = typer.Option(None, "--deployment-name"),
    report_dir: Path | None = typer.Option(
        None, "--report-dir", help="Default: settings.reports_dir."
    ),
    store: bool = typer.Option(True, "--store/--no-store", help="Save rows to the results store."),
    database_url: str | None = typer.Option(None, "--database-url", help="Override the store URL."),
    api_key: str | None = typer.Option(
        None, "--api-key", hidden=True, help="Refused: argv is visible to every user."
    ),
    api_key_file: Path | None = typer.Option(
        None,
        "--api-key-file",
        help=f"File holding the API key (mode 600); default: the {API_KEY_ENV} variable.",
    ),
    usd_per_hour: float | None = typer.Option(
        None,
        "--usd-per-hour",
        min=0.0,
        help="What the endpoint's hardware costs per hour: adds cost per 1M output tokens.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print only the summary JSON on stdout."),
) -> None:
    """Benchmark an OpenAI-compatible streaming endpoint."""
    key = _api_key(api_key, api_key_file)
    price = given_price(usd_per_hour) if usd_per_hour else None
    config = BenchmarkConfig(
        url=url,
        model=model,
        api=api,
        profile=parse_profile(profile),
        duration_s=duration,
        max_requests=requests,
        warmup_requests=warmup,
        input_tokens=parse_token_spec(input_tokens, "--input-tokens"),
        output_tokens=parse_token_spec(output_tokens, "--output-tokens"),
        dataset=dataset,
        prompts_file=prompts_file,
        tokenizer=tokenizer,
        slos_ms=parse_slos(slo),
        ignore_eos=ignore_eos,
        request_timeout_s=request_timeout,
        seed=seed,
        processes=processes,
        name=name,
        deployment_name=deployment_name,
        api_key=key,
    )
    config.validate()
    with _progress(config, enabled=not as_json and sys.stderr.isatty()) as on_record:
        result = run_benchmark(config, on_record)
    folder = write_report(result, report_dir or get_settings().reports_dir, price)
    run_id = save_to_store(result, database_url, deployment_id, price, folder) if store else None
    summary = summary_dict(result, price)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(render_markdown(summary))
    typer.echo(f"Report: {folder}")
    typer.echo(f"Store run id: {run_id}" if run_id is not None else "Store: not saved (--no-store)")


@app.command("import")
@exits_on_error()
def import_run(
    file: Path = typer.Argument(
        ..., help="A store-pending.json.gz a benchmark wrote when the store was unavailable."
    ),
    database_url: str | None = typer.Option(None, "--database-url", help="Override the store URL."),
) -> None:
    """Store a run kept in FILE; a run the store already holds is not stored again."""
    from budcluster.store.benchmark_results import import_pending

    store = _open_store(database_url)
    try:
        pending, saved = import_pending(file, store)
    finally:
        store.dispose()
    if saved.created:
        typer.echo(
            f"stored run {saved.run_id} ({pending.run.name}): {len(pending.records)} requests, "
            f"{len(pending.levels)} levels"
        )
    else:
        typer.echo(f"run {saved.run_id} ({pending.run.name}) was already stored; nothing written")


@app.command()
@exits_on_error()
def compare(
    run_a: Path = typer.Argument(..., help="Baseline: a report folder or its summary.json."),
    run_b: Path = typer.Argument(..., help="Candidate: a report folder or its summary.json."),
    threshold: float = typer.Option(
        DEFAULT_THRESHOLD_PCT, "--threshold", help="Default allowed worsening, percent."
    ),
    thresholds: str | None = typer.Option(
        None, "--thresholds", help="Per metric, e.g. ttft_ms.p99=20%,error_rate=0.5 (points)."
    ),
) -> None:
    """Report changes from RUN_A to RUN_B; exit 1 on any regression beyond the thresholds."""
    changes = compare_summaries(
        load_summary(run_a), load_summary(run_b), threshold, parse_thresholds(thresholds)
    )
    typer.echo(render_changes(changes))
    regressions = [c for c in changes if c.regression]
    if regressions:
        typer.echo(f"{len(regressions)} regression(s) beyond the thresholds", err=True)
        raise typer.Exit(code=1)
    typer.echo("no regression beyond the thresholds")


@app.command()
@exits_on_error()
def costs(
    deployment: str = typer.Option(..., "--deployment", help="Deployment name."),
    cluster: str | None = typer.Option(
        None, "--cluster", help="Only runs of the deployment on this cluster."
    ),
    database_url: str | None = typer.Option(None, "--database-url", help="Override the store URL."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON rows instead of a table."),
) -> None:
    """Cost per million output tokens of a deployment over time, one row per run and level."""
    from budcluster.store.costs import cost_history

    store = _open_store(database_url)
    try:
        with store.session() as session:
            points = cost_history(session, deployment, cluster)
    finally:
        store.dispose()
    if as_json:
        rows = [
            {
                "run_id": p.run_id,
                "started_at": p.started_at.isoformat(),
                "cluster": p.cluster,
                "level": p.label,
                "output_tokens_per_s": p.output_tokens_per_s,
                "usd_per_hour": p.usd_per_hour,
                "usd_per_million_output_tokens": p.usd_per_million_output_tokens,
            }
            for p in points
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    if not points:
        typer.echo(f"no benchmark runs of deployment {deployment!r} in the store")
        return
    typer.echo(render_cost_history(points))


def render_cost_history(points: list[CostPoint]) -> str:
    def money(value: float | None, digits: int) -> str:
        return "n/a" if value is None else f"${value:.{digits}f}"

    lines = [
        "| started (UTC) | run | cluster | level | output tok/s | $/h | $ per 1M output tokens |",
        "|---|---:|---|---|---:|---:|---:|",
    ]
    lines += [
        f"| {p.started_at:%Y-%m-%d %H:%M} | {p.run_id} | {p.cluster or '(none)'} | {p.label} | "
        f"{p.output_tokens_per_s:.1f} | {money(p.usd_per_hour, 4)} | "
        f"{money(p.usd_per_million_output_tokens, 4)} |"
        for p in points
    ]
    return "\n".join(lines)
