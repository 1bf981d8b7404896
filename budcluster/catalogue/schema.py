"""The declarative model catalogue (``deployments.yaml``): what should run where.

Each entry names a deployment, its cluster and model, how to place and run it, how to
benchmark it and what to compare each benchmark with. :func:`load_catalogue` reads and
validates the file; its errors name the entry (by index and name) and the field.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, cast

import yaml
from cronsim import CronSim, CronSimError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from budcluster.bench.compare import parse_thresholds
from budcluster.bench.specs import parse_profile, parse_token_spec
from budcluster.errors import ConfigurationError
from budcluster.job_requests import (
    REPLICAS_DESCRIPTION,
    AutoscalingRequest,
    BenchmarkProfile,
    DeployModelRequest,
    DeviceChoice,
    EngineChoice,
    LoraAdapterRequest,
    ModelSourceRequest,
    Replicas,
    check_autoscaled_replicas,
)
from budcluster.job_requests._common import _check_name
from budcluster.job_requests.scheduling import NodeSelector, Tolerations
from budcluster.planning.limits import (
    MAX_CONCURRENCY,
    MAX_REPLICAS,
    MAX_REQUESTS,
    MAX_SECONDS,
    ConcurrencyLimit,
    ContextLength,
    PercentLimit,
    RunId,
    Seconds,
    number_in,
    whole_number,
)
from budcluster.planning.placement import AUTO_CLUSTER

PORT_RANGE = (1025, 65535)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HardwarePreference(_Strict):
    device: DeviceChoice = Field(
        DeviceChoice.AUTO, description="auto prefers CUDA, then Gaudi, then AMX CPUs, then CPUs."
    )
    # deploy-model's fields of the same names, so a tainted or labelled pool is reachable
    # from the catalogue too.
    tolerations: Tolerations = Field(default_factory=list)
    node_selector: NodeSelector = Field(default_factory=dict)


class RuntimeOverrides(_Strict):
    """What the planner would otherwise choose; the same fields as ``deploy-model``."""

    engine: EngineChoice = EngineChoice.AUTO
    max_model_len: ContextLength | None = None
    concurrency: ConcurrencyLimit = 4
    replicas: Replicas = Field(1, description=REPLICAS_DESCRIPTION)
    port: int = Field(8000, gt=PORT_RANGE[0] - 1, lt=PORT_RANGE[1] + 1)
    ready_timeout_s: Seconds = 600
    engine_args: list[str] = Field(
        default_factory=list, description="Extra engine arguments, after the planned ones."
    )
    autoscaling: AutoscalingRequest | None = Field(
        None, description="Kubernetes only: scale replicas on a runtime metric (as deploy-model)."
    )

    @field_validator("port", mode="before")
    @classmethod
    def _whole_port(cls, value: object) -> object:
        # Lax pydantic would take 8000.0 or true; the range is the Field's to report.
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError(
                f"must be a whole number from {PORT_RANGE[0]} to {PORT_RANGE[1]}, not {value!r}"
            )
        return value

    @field_validator("replicas")
    @classmethod
    def _replica_ceiling(cls, value: int | str) -> int | str:
        # Replicas (the deploy form's type) has no ceiling of its own.
        if isinstance(value, int) and value > MAX_REPLICAS:
            raise ValueError(
                f"replicas {value} is too many: must be a number from 1 to {MAX_REPLICAS} or 'auto'"
            )
        return value

    @model_validator(mode="after")
    def _fixed_or_scaled(self) -> RuntimeOverrides:
        check_autoscaled_replicas(self.replicas, self.autoscaling)
        return self


class BaselineKind(StrEnum):
    PREVIOUS = "previous"
    """The latest earlier stored run of this deployment with the same load profile."""
    PINNED = "pinned"
    """A fixed run: a stored run id, or a report folder (or its summary.json)."""
    NONE = "none"
    """Measure only; never compare."""


class BaselinePolicy(_Strict):
    kind: BaselineKind = BaselineKind.PREVIOUS
    run_id: RunId | None = Field(None, description="pinned: a run id in the results store.")
    report: str | None = Field(None, description="pinned: a report folder or its summary.json.")
    threshold_pct: PercentLimit = Field(10.0, description="Default allowed change, in percent.")
    thresholds: str | None = Field(
        None, description="Per-metric limits, e.g. 'ttft_ms.p99=20%,request_throughput=5%'."
    )

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, value: str | None) -> str | None:
        try:
            parse_thresholds(value)
        except ConfigurationError as exc:
            raise ValueError(str(exc).removeprefix("--thresholds: ")) from exc
        return value

    @model_validator(mode="after")
    def _pinned_target(self) -> BaselinePolicy:
        pinned = [self.run_id is not None, self.report is not None]
        if self.kind is BaselineKind.PINNED and sum(pinned) != 1:
            raise ValueError("kind 'pinned' needs exactly one of run_id or report")
        if self.kind is not BaselineKind.PINNED and any(pinned):
            raise ValueError(f"run_id and report apply to kind 'pinned' only, not {self.kind!r}")
        return self

    def threshold_map(self) -> dict[str, float]:
        return parse_thresholds(self.thresholds)


class BenchmarkPlan(_Strict):
    profile: BenchmarkProfile = Field(default_factory=BenchmarkProfile)
    baseline: BaselinePolicy = Field(default_factory=BaselinePolicy)

    @field_validator("profile", mode="wrap")
    @classmethod
    def _profile(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> BenchmarkProfile:
        # The profile's string parsers raise ConfigurationError, which pydantic would let
        # escape without a location; as a ValueError it is reported against this entry.
        if isinstance(value, dict):
            _check_profile_numbers(value)
        try:
            profile = cast(BenchmarkProfile, handler(value))
            _check_profile_strings(profile)
        except ConfigurationError as exc:
            raise ValueError(str(exc)) from exc
        return profile


# BenchmarkProfile is the deploy form's (lax: 1.5 requests, an infinite duration); the
# catalogue holds its numbers to the same limits as the rest of this schema.
_PROFILE_NUMBERS = {
    "requests": whole_number(1, MAX_REQUESTS),
    "duration_s": number_in(0, MAX_SECONDS, low_open=True),
    "warmup_requests": whole_number(0, MAX_REQUESTS),
}


def _check_profile_numbers(raw: dict[str, Any]) -> None:
    for key, check in _PROFILE_NUMBERS.items():
        if raw.get(key) is not None:
            try:
                check(raw[key])
            except ValueError as exc:
                raise ValueError(f"{key} {exc}") from exc


def _check_profile_strings(profile: BenchmarkProfile) -> None:
    """The numbers inside the load and token strings: finite and within reason."""
    load = parse_profile(profile.profile)
    limit = MAX_CONCURRENCY if load.kind == "concurrency" else MAX_REQUESTS
    if not (math.isfinite(load.burstiness) and math.isfinite(load.value) and load.value <= limit):
        raise ValueError(
            f"profile {profile.profile!r}: its numbers must be finite and at most {limit} "
            "(e.g. 'rate:2.5')"
        )
    for key in ("input_tokens", "output_tokens"):
        text = getattr(profile, key)
        spec = parse_token_spec(text, key)
        if not all(math.isfinite(n) and n <= spec.maximum for n in (spec.a, spec.b)):
            raise ValueError(
                f"{key} {text!r}: token counts must be finite and at most {spec.maximum}"
            )


class CatalogueEntry(_Strict):
    name: str = Field(description="Deployment name, unique per cluster.")
    cluster: str = Field(description="Name of a registered cluster.")
    model: ModelSourceRequest
    hardware: HardwarePreference = Field(default_factory=HardwarePreference)
    runtime: RuntimeOverrides = Field(default_factory=RuntimeOverrides)
    benchmark: BenchmarkPlan | None = None
    adapters: list[LoraAdapterRequest] = Field(
        default_factory=list,
        description="LoRA adapters served beside the model (deploy-model's adapters).",
    )
    schedule: str | None = Field(
        None,
        description=(
            "Cron (UTC) for scheduled benchmarks of this entry; empty: every "
            "scheduled-benchmarks run measures it."
        ),
    )

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            CronSim(value, datetime.now(UTC))
        except CronSimError as exc:
            raise ValueError(
                f"{value!r} is not a cron expression ({exc}); e.g. '0 */6 * * *'"
            ) from exc
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        # The deploy form's rule (DNS-1123), checked here so the error names this entry.
        return _check_name(value, "deployment name")

    @model_validator(mode="after")
    def _adapters(self) -> CatalogueEntry:
        # The deploy form's rules, checked here so the error names this entry.
        names = [adapter.name for adapter in self.adapters]
        if len(set(names)) != len(names) or self.name in names:
            raise ValueError(
                f"adapters {names}: give each adapter a name of its own, not the deployment's"
            )
        chosen = self.benchmark.profile.adapter if self.benchmark else None
        if chosen is not None and chosen not in names:
            raise ValueError(
                f"benchmark.profile.adapter {chosen!r} is not one of the adapters "
                f"{names or '(none)'}"
            )
        return self

    @field_validator("cluster")
    @classmethod
    def _cluster(cls, value: str) -> str:
        if value == AUTO_CLUSTER:
            # The catalogue keys entries by cluster; a placement that may move is not one.
            raise ValueError(
                f"cluster {AUTO_CLUSTER!r} is for deploy-model runs only; name the cluster "
                "(run deploy-model with cluster 'auto' once to see where it would go)"
            )
        return value

    @property
    def key(self) -> tuple[str, str]:
        return (self.cluster, self.name)

    def deploy_request(self) -> DeployModelRequest:
        """The ``deploy-model`` parameters this entry stands for."""
        return DeployModelRequest(
            name=self.name,
            cluster=self.cluster,
            model=self.model,
            device=self.hardware.device,
            engine=self.runtime.engine,
            max_model_len=self.runtime.max_model_len,
            concurrency=self.runtime.concurrency,
            replicas=self.runtime.replicas,
            port=self.runtime.port,
            ready_timeout_s=self.runtime.ready_timeout_s,
            engine_args=self.runtime.engine_args,
            autoscaling=self.runtime.autoscaling,
            benchmark=self.benchmark.profile if self.benchmark else None,
            adapters=self.adapters,
            tolerations=self.hardware.tolerations,
            node_selector=self.hardware.node_selector,
        )

    def spec_hash(self) -> str:
        """The same hash ``deploy-model`` stores, so the two always agree."""
        return self.deploy_request().spec_hash()

    def is_due(self, now: datetime, window_s: float) -> bool:
        """Whether the schedule fired in ``(now - window_s, now]``; no schedule: always."""
        if self.schedule is None:
            return True
        start = now.astimezone(UTC).timestamp() - window_s
        fire = next(iter(CronSim(self.schedule, datetime.fromtimestamp(start, UTC))))
        return fire <= now


class Catalogue(_Strict):
    prune: bool = Field(
        False, description="Remove deployments of managed clusters that no entry names."
    )
    clusters: list[str] = Field(
        default_factory=list,
        description="Clusters this catalogue manages besides those its entries name.",
    )
    deployments: list[CatalogueEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> Catalogue:
        seen: dict[tuple[str, str], int] = {}
        for index, entry in enumerate(self.deployments):
            if entry.key in seen:
                raise ValueError(
                    f"deployments[{index}] ({entry.name!r}) repeats deployments[{seen[entry.key]}]"
                    f": names must be unique per cluster ({entry.cluster!r}); rename one"
                )
            seen[entry.key] = index
        return self

    def managed_clusters(self) -> set[str]:
        return set(self.clusters) | {entry.cluster for entry in self.deployments}

    def entry(self, name: str, cluster: str | None = None) -> CatalogueEntry:
        matches = [e for e in self.deployments if e.name == name and cluster in (None, e.cluster)]
        if len(matches) != 1:
            known = ", ".join(f"{e.cluster}/{e.name}" for e in self.deployments) or "none"
            what = "no entry" if not matches else "several entries (give the cluster)"
            raise ConfigurationError(f"catalogue has {what} named {name!r}; entries: {known}")
        return matches[0]


def _location(raw: Any, loc: tuple[int | str, ...]) -> tuple[str, str]:
    """("deployments[1] ('qwen')", "runtime.port") for a pydantic error location."""
    if len(loc) >= 2 and loc[0] == "deployments" and isinstance(loc[1], int):
        index = loc[1]
        name = None
        items = raw.get("deployments") if isinstance(raw, dict) else None
        if isinstance(items, list) and index < len(items) and isinstance(items[index], dict):
            name = items[index].get("name")
        where = f"deployments[{index}]" + (f" ({name!r})" if name else "")
        return where, ".".join(str(part) for part in loc[2:]) or "(the entry)"
    return "catalogue", ".".join(str(part) for part in loc) or "(top level)"


def parse_catalogue(raw: Any, source: str = "deployments.yaml") -> Catalogue:
    """Validate already-parsed YAML; the error lists every problem, entry and field first."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigurationError(
            f"{source}: the top level must be a mapping with a 'deployments' list"
        )
    try:
        return Catalogue.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            where, field = _location(raw, tuple(error["loc"]))
            message = str(error["msg"]).removeprefix("Value error, ")
            lines.append(f"  {where}: field {field}: {message}")
        raise ConfigurationError(
            f"{source}: {len(lines)} problem(s):\n" + "\n".join(lines)
        ) from exc


def load_catalogue(path: Path) -> Catalogue:
    """Read and validate ``path``; every error is a ConfigurationError naming the fix."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigurationError(
            f"{path}: no catalogue file; write one (see deployments.yaml in the project) "
            "or pass catalogue_path"
        ) from exc
    except OSError as exc:
        raise ConfigurationError(
            f"{path}: cannot read the catalogue ({exc.strerror}); give the path of a readable "
            "YAML file"
        ) from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigurationError(
            f"{path}: not UTF-8 (byte 0x{data[exc.start]:02x} on line {line}); save the file "
            "as UTF-8"
        ) from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{path}: not valid YAML{_yaml_position(exc)}") from exc
    if raw is None:
        # An empty file is more likely a truncated or unsaved one than a wish to manage
        # nothing, so it is refused rather than read as "no deployments".
        raise ConfigurationError(
            f"{path}: the catalogue is empty; write at least 'deployments: []' (see "
            "deployments.yaml in the project)"
        )
    return parse_catalogue(raw, str(path))


def _yaml_position(error: yaml.YAMLError) -> str:
    """ " at line L, column C: PROBLEM; fix the syntax there" on one line, when known."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or "syntax error"
    if mark is None:
        return f": {problem}"
    return f" at line {mark.line + 1}, column {mark.column + 1}: {problem}; fix the syntax there"
