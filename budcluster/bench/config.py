"""What a benchmark run is asked to do: :class:`BenchmarkConfig`. Pure.

Flow forms (``budcluster.job_requests``) and the CLI build one; the runner takes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from budcluster.bench.access import EndpointAccess
from budcluster.bench.specs import ProfileSpec, TokenLengthSpec
from budcluster.errors import ConfigurationError


@dataclass(slots=True)
class BenchmarkConfig:
    url: str
    model: str
    api: str = "completions"
    profile: ProfileSpec = field(default_factory=lambda: ProfileSpec("concurrency", 1))
    duration_s: float | None = None
    max_requests: int | None = None
    warmup_requests: int = 0
    input_tokens: TokenLengthSpec = field(default_factory=lambda: TokenLengthSpec("fixed", 128))
    output_tokens: TokenLengthSpec = field(default_factory=lambda: TokenLengthSpec("fixed", 128))
    dataset: Path | None = None
    """A ShareGPT-format JSON file."""
    prompts_file: Path | None = None
    tokenizer: str | None = None
    slos_ms: dict[str, float] = field(default_factory=dict)
    ignore_eos: bool = False
    request_timeout_s: float = 600.0
    seed: int = 0
    processes: int = 1
    name: str = "bench"
    deployment_name: str | None = None
    api_key: str | None = None
    extra_body: dict[str, object] = field(default_factory=dict)
    """Fields every request carries, e.g. llama-server's ``lora`` adapter selection."""
    access: EndpointAccess | None = field(default=None, repr=False)
    """How the worker reaches ``url`` when it cannot dial it (a Kubernetes Service: through
    the API server's service proxy). ``url`` stays what the run records; the report says
    how it was reached (``access.via``)."""

    def validate(self) -> None:
        if self.api not in ("completions", "chat"):
            raise ConfigurationError(f"--api must be completions or chat, got {self.api!r}")
        if not self.url.startswith(("http://", "https://")):
            raise ConfigurationError(f"--url must start with http:// or https://, got {self.url!r}")
        if self.duration_s is None and self.max_requests is None:
            raise ConfigurationError("give --duration S or --requests N to bound the run")
        if self.duration_s is not None and self.duration_s <= 0:
            raise ConfigurationError(f"--duration must be > 0 seconds, got {self.duration_s}")
        if self.max_requests is not None and self.max_requests < 1:
            raise ConfigurationError(f"--requests must be >= 1, got {self.max_requests}")
        if self.processes < 1:
            raise ConfigurationError(f"--processes must be >= 1, got {self.processes}")
        if self.processes > 1 and self.profile.kind == "sweep":
            raise ConfigurationError(
                "--processes > 1 cannot drive a sweep (each level depends on the last); "
                "run the sweep's levels as separate rate profiles instead"
            )
        if self.dataset is not None and self.prompts_file is not None:
            raise ConfigurationError("give either --dataset or --prompts-file, not both")
        if self.access is not None:
            self.access.check_api_key(self.api_key)
            bound = None if self.duration_s is None else self.duration_s + self.request_timeout_s
            self.access.check_lasts(bound)

    def as_settings(self) -> dict[str, object]:
        settings = self._settings()
        if self.extra_body:
            settings["extra_body"] = dict(self.extra_body)
        if self.access is not None:
            settings["reached_via"] = self.access.via
        return settings

    def _settings(self) -> dict[str, object]:
        return {
            "api": self.api,
            "profile": self.profile.label(),
            "duration_s": self.duration_s,
            "max_requests": self.max_requests,
            "warmup_requests": self.warmup_requests,
            "input_tokens": self.input_tokens.describe(),
            "output_tokens": self.output_tokens.describe(),
            "dataset": str(self.dataset) if self.dataset else None,
            "prompts_file": str(self.prompts_file) if self.prompts_file else None,
            "slos_ms": dict(self.slos_ms),
            "ignore_eos": self.ignore_eos,
            "request_timeout_s": self.request_timeout_s,
            "seed": self.seed,
            "processes": self.processes,
        }
