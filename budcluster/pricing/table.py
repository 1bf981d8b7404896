"""The price table: per device hour, per vCPU hour and per instance type, with its source.

The file is YAML a person edits; :func:`load_price_table` validates it and says which
field is wrong and how to fix it. Reading the one file is this module's only I/O.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from budcluster.errors import ConfigurationError

DEFAULT_PRICE_TABLE = Path(__file__).resolve().parent / "prices.yaml"

DeviceKind = Literal["cuda", "hpu", "cpu"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DevicePrice(_Strict):
    """One accelerator model's price per device hour."""

    name: str = Field(min_length=1)
    kind: Literal["cuda", "hpu"]
    match: list[str] = Field(
        min_length=1,
        description="Case-insensitive words of the product name (nvidia-smi, hl-smi).",
    )
    usd_per_hour: float | None = Field(
        None, gt=0, description="None: a placeholder; costs on it are unknown until set."
    )
    source: str = ""

    def matched_length(self, product: str) -> int:
        """Length of the longest ``match`` found in ``product`` as a whole word (0: none).

        Whole words, so "L4" does not price an "L40S".
        """
        best = 0
        for word in self.match:
            pattern = rf"(?<![A-Za-z0-9]){re.escape(word)}(?![A-Za-z0-9])"
            if re.search(pattern, product, flags=re.IGNORECASE):
                best = max(best, len(word))
        return best


class InstancePrice(_Strict):
    usd_per_hour: float = Field(gt=0)
    device_kind: DeviceKind
    devices: int = Field(gt=0, description="GPUs or Gaudi cards; vCPUs for a CPU instance.")

    @property
    def usd_per_device_hour(self) -> float:
        return self.usd_per_hour / self.devices


class ClusterPricing(_Strict):
    instance_type: str = Field(description="A key of instance_types.")


class PriceTable(_Strict):
    currency: Literal["USD"] = "USD"
    as_of: date = Field(description="When the prices were read from their source.")
    source: str = Field(min_length=1, description="Where the default prices come from.")
    cpu_vcpu_usd_per_hour: float | None = Field(None, gt=0)
    devices: list[DevicePrice] = Field(default_factory=list)
    instance_types: dict[str, InstancePrice] = Field(default_factory=dict)
    clusters: dict[str, ClusterPricing] = Field(default_factory=dict)
    path: str = Field("", description="The file it was read from (set by the loader).")

    @field_validator("clusters")
    @classmethod
    def _known_instances(
        cls, value: dict[str, ClusterPricing], info: ValidationInfo
    ) -> dict[str, ClusterPricing]:
        known = info.data.get("instance_types", {})
        for cluster, pricing in value.items():
            if pricing.instance_type not in known:
                raise ValueError(
                    f"clusters.{cluster}.instance_type {pricing.instance_type!r} is not in "
                    f"instance_types (known: {', '.join(sorted(known)) or 'none'}); add it there"
                )
        return value

    def device_price(self, product: str, kind: str) -> DevicePrice | None:
        """The entry whose match is the longest whole word of ``product``, of that kind."""
        scored = [(entry.matched_length(product), entry) for entry in self.devices]
        scored = [(length, entry) for length, entry in scored if length and entry.kind == kind]
        if not scored:
            return None
        return max(scored, key=lambda pair: pair[0])[1]

    def cluster_instance(self, cluster: str | None) -> tuple[str, InstancePrice] | None:
        if cluster is None or cluster not in self.clusters:
            return None
        name = self.clusters[cluster].instance_type
        return name, self.instance_types[name]

    def provenance(self) -> dict[str, str]:
        return {
            "currency": self.currency,
            "as_of": self.as_of.isoformat(),
            "source": self.source,
            "table": self.path,
        }


def default_price_table_path() -> Path:
    return DEFAULT_PRICE_TABLE


def load_price_table(path: Path | None = None) -> PriceTable:
    """Read and validate the table at ``path`` (the packaged defaults when None)."""
    where = path or DEFAULT_PRICE_TABLE
    try:
        data = yaml.safe_load(where.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(
            f"price table {where}: cannot read it ({exc.strerror}); set BUDCLUSTER_PRICE_TABLE "
            "to a readable YAML file, or unset it to use the packaged defaults"
        ) from exc
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"price table {where}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigurationError(f"price table {where}: expected a mapping at the top level")
    try:
        return PriceTable.model_validate({**data, "path": str(where)})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise ConfigurationError(f"price table {where}: {problems}") from exc
