"""Runs a benchmark: plans levels, drives the client, aggregates records into summaries.

Clock: every time is ``time.perf_counter()`` minus the run's origin. On Linux that is
CLOCK_MONOTONIC, shared by all processes, so multi-process load generation needs no
clock alignment: each worker gets the same origin and start time.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import multiprocessing
import random
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from budcluster.bench import profiles
from budcluster.bench.client import ClientConfig, StreamingClient
from budcluster.bench.config import BenchmarkConfig as BenchmarkConfig
from budcluster.bench.datasets import (
    Prompt,
    Tokenizer,
    WordTokenizer,
    load_tokenizer,
    prompts_file,
    sharegpt_prompts,
    synthetic_prompts,
)
from budcluster.bench.metrics import summarize_level
from budcluster.bench.profiles import LevelPlan
from budcluster.bench.records import LevelSummary, RequestRecord, RunInfo
from budcluster.bench.result import BenchmarkResult as BenchmarkResult

TOOL_VERSION = "budcluster-bench/1"
# Prompts are generated once and cycled; enough variety to defeat a naive prefix cache.
_PROMPT_POOL = 1000

OnRecord = Callable[[RequestRecord], None]
_T = TypeVar("_T")


def build_prompts(config: BenchmarkConfig, tokenizer: Tokenizer) -> list[Prompt]:
    if config.dataset is not None:
        return sharegpt_prompts(config.dataset, tokenizer, limit=_PROMPT_POOL, seed=config.seed)
    if config.prompts_file is not None:
        return prompts_file(config.prompts_file, tokenizer, config.output_tokens, config.seed)
    count = min(config.max_requests or _PROMPT_POOL, _PROMPT_POOL)
    return synthetic_prompts(
        count, config.input_tokens, config.output_tokens, tokenizer, config.seed
    )


class _Budget:
    """Hands out request ids and prompts until the request or time limit is reached."""

    def __init__(
        self,
        prompts: list[Prompt],
        max_requests: int | None,
        stop_at: float | None,
        ids: Iterator[int],
    ) -> None:
        self._prompts = itertools.cycle(prompts)
        self._left = max_requests
        self.stop_at = stop_at
        self._ids = ids

    def take(self) -> tuple[int, Prompt] | None:
        if self._left is not None:
            if self._left <= 0:
                return None
            self._left -= 1
        if self.stop_at is not None and time.perf_counter() >= self.stop_at:
            return None
        return next(self._ids), next(self._prompts)


async def _run_concurrency(
    client: StreamingClient,
    plan: LevelPlan,
    budget: _Budget,
    origin: float,
    warmup: bool,
    on_record: OnRecord | None,
) -> list[RequestRecord]:
    records: list[RequestRecord] = []

    async def stream() -> None:
        while (item := budget.take()) is not None:
            request_id, prompt = item
            scheduled = time.perf_counter() - origin
            record = RequestRecord(request_id, plan.level, scheduled, warmup=warmup)
            records.append(record)
            await client.send(prompt, record)
            if on_record is not None:
                on_record(record)

    await asyncio.gather(*(stream() for _ in range(plan.concurrency or 1)))
    return records


async def _run_schedule(
    client: StreamingClient,
    plan: LevelPlan,
    budget: _Budget,
    origin: float,
    arrivals: Iterator[float],
    on_record: OnRecord | None,
) -> list[RequestRecord]:
    records: list[RequestRecord] = []
    tasks: set[asyncio.Task[None]] = set()
    limit = asyncio.Semaphore(plan.max_concurrency) if plan.max_concurrency else None
    start = time.perf_counter()

    async def one(record: RequestRecord, prompt: Prompt) -> None:
        # Waiting for a slot counts as schedule delay: the request went out late.
        if limit is not None:
            async with limit:
                await client.send(prompt, record)
        else:
            await client.send(prompt, record)
        if on_record is not None:
            on_record(record)

    for offset in arrivals:
        due = start + offset
        if budget.stop_at is not None and due >= budget.stop_at:
            break
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        item = budget.take()
        if item is None:
            break
        request_id, prompt = item
        record = RequestRecord(request_id, plan.level, due - origin)
        records.append(record)
        task = asyncio.create_task(one(record, prompt))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)
    return records


async def run_level(
    client: StreamingClient,
    plan: LevelPlan,
    prompts: list[Prompt],
    origin: float,
    *,
    duration_s: float | None,
    max_requests: int | None,
    warmup_requests: int = 0,
    seed: int = 0,
    ids: Iterator[int] | None = None,
    phase_s: float = 0.0,
    on_record: OnRecord | None = None,
) -> list[RequestRecord]:
    """Warm up, then run one level until its time or request limit."""
    ids = ids if ids is not None else itertools.count()
    records: list[RequestRecord] = []
    if warmup_requests > 0:
        streams = min(warmup_requests, plan.concurrency or plan.max_concurrency or 8)
        warm_plan = LevelPlan(plan.level, "warmup", "concurrency", concurrency=streams)
        warm_budget = _Budget(prompts, warmup_requests, None, ids)
        records += await _run_concurrency(client, warm_plan, warm_budget, origin, True, None)
    stop_at = time.perf_counter() + duration_s if duration_s is not None else None
    budget = _Budget(prompts, max_requests, stop_at, ids)
    if plan.arrivals == "concurrency":
        records += await _run_concurrency(client, plan, budget, origin, False, on_record)
    else:
        rng = random.Random(seed * 7919 + plan.level)
        rate = plan.rate or 1.0
        arrivals = profiles.arrival_offsets(plan.arrivals, rate, rng, plan.burstiness, phase_s)
        records += await _run_schedule(client, plan, budget, origin, arrivals, on_record)
    return records


def _summary(
    plan: LevelPlan, records: list[RequestRecord], slos_ms: dict[str, float]
) -> LevelSummary:
    return summarize_level(
        [r for r in records if r.level == plan.level],
        level=plan.level,
        label=plan.label,
        target_concurrency=plan.concurrency if plan.arrivals == "concurrency" else None,
        target_rate=plan.rate,
        slos_ms=slos_ms,
    )


def fast_loop_factory() -> tuple[Callable[[], asyncio.AbstractEventLoop] | None, str]:
    """uvloop's loop factory when installed (else asyncio's default) and its name.

    A factory, not a global policy, so that running a benchmark does not change the
    event loop of everything else in the process (tests, Prefect).
    """
    try:
        import uvloop

        return uvloop.new_event_loop, "uvloop"
    except ImportError:
        return None, "asyncio"


def run_on_fast_loop(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coro`` to completion on a fresh uvloop (or asyncio) event loop."""
    factory, _ = fast_loop_factory()
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)


def _resolve_tokenizer(config: BenchmarkConfig) -> tuple[Tokenizer, Tokenizer | None, str]:
    tokenizer, why = load_tokenizer(config.tokenizer)
    real = None if isinstance(tokenizer, WordTokenizer) else tokenizer
    return tokenizer, real, why


@contextlib.contextmanager
def quiet_gc() -> Iterator[None]:
    """Keep the garbage collector from pausing the event loop mid-run.

    Records pile up during a run and each full collection walks all of them, stalling
    every stream at once. Objects alive at the start (prompts, modules) are frozen out of
    collection, and young collections run less often; both are undone afterwards.
    """
    threshold = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(max(threshold[0], 20_000), threshold[1], threshold[2])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


async def run_benchmark_async(
    config: BenchmarkConfig, on_record: OnRecord | None = None
) -> BenchmarkResult:
    """Run in the current event loop, single process (``processes`` must be 1)."""
    config.validate()
    tokenizer, real_tokenizer, why = _resolve_tokenizer(config)
    prompts = build_prompts(config, tokenizer)
    origin = time.perf_counter()
    run = _new_run_info(config, origin, tokenizer, why)
    client_config = _client_config(config)
    client = StreamingClient(client_config, origin, real_tokenizer)
    records: list[RequestRecord] = []
    levels: list[LevelSummary] = []
    ids = itertools.count()
    with quiet_gc():
        await _run_levels(config, client, prompts, origin, records, levels, ids, on_record)
    run.settings["dropped_fields"] = list(client.dropped_fields)
    run.settings["sse_fast_path_disabled"] = client.fast_path_disabled
    run.settings["event_loop"] = type(asyncio.get_running_loop()).__module__.split(".")[0]
    return _finish(run, levels, records, config)


async def _run_levels(
    config: BenchmarkConfig,
    client: StreamingClient,
    prompts: list[Prompt],
    origin: float,
    records: list[RequestRecord],
    levels: list[LevelSummary],
    ids: Iterator[int],
    on_record: OnRecord | None,
) -> None:
    try:
        plans = profiles.initial_levels(config.profile)
        index = 0
        while index < len(plans):
            plan = plans[index]
            records += await run_level(
                client,
                plan,
                prompts,
                origin,
                duration_s=config.duration_s,
                max_requests=config.max_requests,
                warmup_requests=config.warmup_requests if index == 0 else 0,
                seed=config.seed,
                ids=ids,
                on_record=on_record,
            )
            levels.append(_summary(plan, records, config.slos_ms))
            if config.profile.kind == "sweep" and index == 1:
                plans += profiles.sweep_rate_levels(
                    config.profile, levels[0].request_throughput, levels[1].request_throughput
                )
            index += 1
    finally:
        await client.close()


def _finish(
    run: RunInfo, levels: list[LevelSummary], records: list[RequestRecord], config: BenchmarkConfig
) -> BenchmarkResult:
    run.finished_at = datetime.now(UTC)
    failed = sum(level.requests_failed for level in levels)
    completed = sum(level.requests_completed for level in levels)
    run.status = "failed" if completed == 0 and failed > 0 else "completed"
    sources = sorted({r.output_tokens_source for r in records if r.output_tokens is not None})
    run.settings["output_tokens_source"] = sources
    if len(levels) == 1:
        overall = levels[0]
    else:
        overall = summarize_level(records, level=-1, label="all levels", slos_ms=config.slos_ms)
    return BenchmarkResult(run, levels, overall, records)


def _client_config(config: BenchmarkConfig) -> ClientConfig:
    return ClientConfig(
        base_url=config.url,
        model=config.model,
        api=config.api,
        ignore_eos=config.ignore_eos,
        request_timeout_s=config.request_timeout_s,
        api_key=config.api_key,
        extra_body=dict(config.extra_body),
        access=config.access,
    )


def _new_run_info(
    config: BenchmarkConfig, origin: float, tokenizer: Tokenizer, why: str
) -> RunInfo:
    settings = config.as_settings()
    settings["tokenizer"] = tokenizer.name
    settings["tokenizer_reason"] = why
    return RunInfo(
        name=config.name,
        url=config.url,
        model=config.model,
        api=config.api,
        profile=config.profile.label(),
        tool_version=TOOL_VERSION,
        started_at=datetime.now(UTC),
        started_monotonic=origin,
        deployment_name=config.deployment_name,
        settings=settings,
    )


def run_benchmark(config: BenchmarkConfig, on_record: OnRecord | None = None) -> BenchmarkResult:
    """Run a benchmark to completion: on uvloop when installed, across processes if asked."""
    config.validate()
    if config.processes == 1:
        return run_on_fast_loop(run_benchmark_async(config, on_record))
    return _run_multiprocess(config)


# --- multi-process load generation -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _WorkerJob:
    config: BenchmarkConfig
    plan: LevelPlan
    index: int
    processes: int
    origin: float
    max_requests: int | None
    warmup_requests: int


def _share(total: int, index: int, parts: int) -> int:
    return total // parts + (1 if index < total % parts else 0)


def _worker_plan(plan: LevelPlan, index: int, parts: int) -> LevelPlan:
    if plan.arrivals == "concurrency":
        streams = _share(plan.concurrency or 1, index, parts)
        return LevelPlan(plan.level, plan.label, "concurrency", concurrency=max(streams, 1))
    # Superposed independent Poisson (or gamma) streams of rate r/P make the offered load;
    # constant-rate workers are phase-shifted so their union is evenly spaced.
    cap = _share(plan.max_concurrency, index, parts) if plan.max_concurrency else None
    return LevelPlan(
        plan.level,
        plan.label,
        plan.arrivals,
        rate=(plan.rate or 1.0) / parts,
        burstiness=plan.burstiness,
        max_concurrency=cap,
    )


def _worker_main(job: _WorkerJob, ready: Any, go: Any, start_at: Any, results: Any) -> None:

    async def work() -> tuple[list[RequestRecord], list[str], str | None]:
        tokenizer, real, _ = _resolve_tokenizer(job.config)
        config = job.config
        prompts = build_prompts(config, tokenizer)
        client = StreamingClient(_client_config(config), job.origin, real)
        plan = _worker_plan(job.plan, job.index, job.processes)
        ready.put(job.index)
        await asyncio.get_running_loop().run_in_executor(None, go.wait)
        delay = start_at.value - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        phase = job.index / (job.plan.rate or 1.0) if plan.arrivals == "constant" else 0.0
        try:
            with quiet_gc():
                records = await run_level(
                    client,
                    plan,
                    prompts,
                    job.origin,
                    duration_s=config.duration_s,
                    max_requests=job.max_requests,
                    warmup_requests=job.warmup_requests,
                    seed=config.seed + 104729 * job.index,
                    ids=itertools.count(job.index, job.processes),
                    phase_s=phase,
                )
        finally:
            await client.close()
        return records, client.dropped_fields, client.fast_path_disabled

    results.put((job.index, *run_on_fast_loop(work())))


def _run_multiprocess(config: BenchmarkConfig) -> BenchmarkResult:
    tokenizer, _, why = _resolve_tokenizer(config)
    (plan,) = profiles.initial_levels(config.profile)
    ctx = multiprocessing.get_context("spawn")  # fork would copy a half-initialised loop
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    start_at = ctx.Value("d", 0.0)
    origin = time.perf_counter()
    run = _new_run_info(config, origin, tokenizer, why)
    parts = config.processes
    workers = []
    for index in range(parts):
        job = _WorkerJob(
            config,
            plan,
            index,
            parts,
            origin,
            _share(config.max_requests, index, parts) if config.max_requests else None,
            _share(config.warmup_requests, index, parts),
        )
        process = ctx.Process(target=_worker_main, args=(job, ready, go, start_at, results))
        process.start()
        workers.append(process)
    try:
        for _ in range(parts):
            ready.get(timeout=120)
        start_at.value = time.perf_counter() + 0.05
        go.set()
        records: list[RequestRecord] = []
        dropped: set[str] = set()
        fast_path_disabled: str | None = None
        for _ in range(parts):
            _, worker_records, worker_dropped, worker_fast_path = results.get(
                timeout=(config.duration_s or 3600) + config.request_timeout_s + 60
            )
            records += worker_records
            dropped.update(worker_dropped)
            fast_path_disabled = fast_path_disabled or worker_fast_path
    finally:
        for process in workers:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
    records.sort(key=lambda r: r.scheduled_s)
    run.settings["dropped_fields"] = sorted(dropped)
    run.settings["sse_fast_path_disabled"] = fast_path_disabled
    run.settings["event_loop"] = fast_loop_factory()[1]
    levels = [_summary(plan, records, config.slos_ms)]
    return _finish(run, levels, records, config)
