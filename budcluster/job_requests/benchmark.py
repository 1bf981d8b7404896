"""Forms of benchmark-endpoint and of the benchmark deploy-model runs once ready."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import Field, field_validator, model_validator

from budcluster.bench.config import BenchmarkConfig
from budcluster.bench.specs import parse_profile, parse_slos, parse_token_spec
from budcluster.errors import ConfigurationError
from budcluster.job_requests._common import _Form
from budcluster.planning.limits import RequestCount, Seconds, WarmupCount


def _parsed(value: str, parser: Callable[[str], object]) -> str:
    try:
        parser(value)
    except ConfigurationError as exc:
        raise ValueError(str(exc)) from exc
    return value


class BenchmarkProfile(_Form):
    """How to load an endpoint. The strings use the `budcluster bench run` syntax."""

    profile: str = Field(
        "concurrency:4",
        description="concurrency:N, rate:R, poisson:R, gamma:R,BURSTINESS or sweep.",
    )
    requests: RequestCount | None = Field(64, description="Stop after this many requests.")
    duration_s: Seconds | None = Field(None, description="Or stop after this many seconds.")
    warmup_requests: WarmupCount = Field(4, description="Requests sent first and not measured.")
    input_tokens: str = Field("128", description="N, uniform:A-B or normal:MEAN,SD[,MIN,MAX].")
    output_tokens: str = Field("64", description="N, uniform:A-B or normal:MEAN,SD[,MIN,MAX].")
    api: Literal["completions", "chat"] = Field("completions", description="Which OpenAI API.")
    slo: str | None = Field(None, description="Goodput SLOs, e.g. 'ttft=200ms,tpot=50ms'.")
    ignore_eos: bool = Field(False, description="Ask the server to ignore EOS (if it accepts it).")
    adapter: str | None = Field(
        None,
        description=(
            "Measure this LoRA adapter of the deployment instead of the base model (one of "
            "deploy-model's adapters). Empty: the base model."
        ),
    )

    # The parsers raise ConfigurationError; pydantic reports field locations only for
    # ValueError, so each is re-raised as one.
    @field_validator("profile")
    @classmethod
    def _profile(cls, value: str) -> str:
        return _parsed(value, parse_profile)

    @field_validator("input_tokens", "output_tokens")
    @classmethod
    def _tokens(cls, value: str) -> str:
        return _parsed(value, parse_token_spec)

    @field_validator("slo")
    @classmethod
    def _slo(cls, value: str | None) -> str | None:
        return value if value is None else _parsed(value, parse_slos)

    def to_config(
        self,
        *,
        url: str,
        model: str,
        name: str,
        deployment: str | None,
        extra_body: dict[str, object] | None = None,
    ) -> BenchmarkConfig:
        """``extra_body``: fields every request carries (llama-server's adapter selection)."""
        return BenchmarkConfig(
            url=url,
            model=model,
            api=self.api,
            profile=parse_profile(self.profile),
            duration_s=self.duration_s,
            max_requests=self.requests,
            warmup_requests=self.warmup_requests,
            input_tokens=parse_token_spec(self.input_tokens, "input_tokens"),
            output_tokens=parse_token_spec(self.output_tokens, "output_tokens"),
            slos_ms=parse_slos(self.slo),
            ignore_eos=self.ignore_eos,
            name=name,
            deployment_name=deployment,
            extra_body=dict(extra_body or {}),
        )


class BenchmarkEndpointRequest(_Form):
    cluster: str | None = Field(None, description="Cluster of the deployment to measure.")
    deployment: str | None = Field(None, description="Deployment to measure (with cluster).")
    url: str | None = Field(None, description="Or any OpenAI-compatible base URL.")
    model: str | None = Field(None, description="Served model name (needed with url).")
    profile: BenchmarkProfile = Field(default_factory=BenchmarkProfile)

    @model_validator(mode="after")
    def _target(self) -> BenchmarkEndpointRequest:
        if not self.url and not (self.cluster and self.deployment):
            raise ValueError("give cluster and deployment, or url and model")
        if self.url and not self.model:
            raise ValueError("model is required with url: the served model name")
        if self.profile.adapter is not None and not (self.cluster and self.deployment):
            raise ValueError(
                "profile.adapter needs cluster and deployment (their plan says how the engine "
                "selects it); with a url, give a vLLM adapter's name as the model instead"
            )
        return self
