"""What the devices of a runtime plan cost per hour, line by line. Pure.

An accelerator plan uses ``replicas x tensor_parallel_size`` devices of one product; a MIG
slice is priced as its share of the GPU's compute slices (``3g.40gb``: 3/7 of the GPU).
A CPU plan pays for the vCPUs it reserves (its ``requests.cpu``). A cluster mapped to an
instance type in the table is priced at that instance's price per device instead.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

from budcluster.planning.models import RuntimePlan
from budcluster.pricing.table import PriceTable

# A100 and H100 both split into seven compute slices.
MIG_COMPUTE_SLICES = 7
GIVEN = "given"
_MIG = re.compile(r"\bMIG (\d+)g\.", re.IGNORECASE)
_LABEL_PRODUCT = re.compile(r"\((.+)\)\s*$")


class DeviceLine(BaseModel):
    """One kind of device the plan uses, how many, and at what price."""

    kind: str
    product: str
    count: float = Field(description="Devices (a MIG slice counts as its share of a GPU).")
    unit: str = Field(description="GPU, HPU or vCPU")
    usd_per_device_hour: float | None
    priced_as: str = Field(description="Which table entry gave the price, and its source.")

    @property
    def usd_per_hour(self) -> float | None:
        return None if self.usd_per_device_hour is None else self.usd_per_device_hour * self.count

    def text(self) -> str:
        if self.kind == GIVEN:
            return f"${self.usd_per_device_hour or 0:.4f}/h given with {self.priced_as}"
        price = (
            "unknown" if self.usd_per_device_hour is None else f"${self.usd_per_device_hour:.4f}/h"
        )
        return f"{self.count:g} x {self.unit} {self.product} at {price} ({self.priced_as})"


class HourlyPrice(BaseModel):
    """What a deployment's devices cost per hour; ``usd_per_hour`` None when unknown."""

    usd_per_hour: float | None
    lines: list[DeviceLine]
    devices: float = Field(description="Devices counted (accelerators, or vCPUs on CPU).")
    missing: str | None = Field(None, description="Why the price is unknown, and the fix.")
    provenance: dict[str, str] = Field(default_factory=dict)

    def describe(self) -> str:
        if self.usd_per_hour is None:
            return f"price unknown: {self.missing}"
        return f"${self.usd_per_hour:.4f}/h ({'; '.join(line.text() for line in self.lines)})"

    def source_text(self) -> str:
        """Where the prices come from, for reports."""
        if "as_of" not in self.provenance:
            return f"price given with {self.provenance.get('source', 'the run')}"
        return (
            f"{self.provenance.get('currency', 'USD')} list prices as of "
            f"{self.provenance['as_of']} from {self.provenance.get('table') or 'the price table'}"
            " (see its source); not what you pay after discounts"
        )

    def as_record(self) -> dict[str, object]:
        """What the store and summary.json keep about the price."""
        return self.model_dump(mode="json")


def plan_product(plan: RuntimePlan) -> str:
    """The device product the plan runs on: its own field, else its placement labels."""
    if plan.device_product:
        return plan.device_product
    for placement in plan.placements:
        for label in placement.devices:
            found = _LABEL_PRODUCT.search(label)
            if found and not label.startswith("NUMA"):
                return found.group(1)
    return "CPU" if plan.device_kind == "cpu" else "unknown"


def _mig_share(product: str) -> float:
    found = _MIG.search(product)
    return int(found.group(1)) / MIG_COMPUTE_SLICES if found else 1.0


def _cpu_count(plan: RuntimePlan) -> float:
    value = plan.resources.get("requests", {}).get("cpu", "1")
    try:
        return float(value[:-1]) / 1000 if value.endswith("m") else float(value)
    except ValueError:
        return 1.0


def plan_devices(plan: RuntimePlan, *, per_replica: bool = False) -> float:
    """Devices the plan holds: accelerators (MIG slices as shares), or vCPUs on CPU."""
    if plan.device_kind == "cpu":
        return _cpu_count(plan)
    replicas = 1 if per_replica else plan.replicas
    return replicas * plan.tensor_parallel_size * _mig_share(plan_product(plan))


def plan_hourly_price(
    plan: RuntimePlan,
    table: PriceTable,
    cluster: str | None = None,
    *,
    per_replica: bool = False,
) -> HourlyPrice:
    """The plan's devices at the table's prices (one replica's when ``per_replica``)."""
    product = plan_product(plan)
    count = plan_devices(plan, per_replica=per_replica)
    unit = {"cuda": "GPU", "hpu": "HPU", "cpu": "vCPU"}[plan.device_kind]
    price, priced_as, missing = _unit_price(plan.device_kind, product, table, cluster)
    line = DeviceLine(
        kind=plan.device_kind,
        product=product,
        count=count,
        unit=unit,
        usd_per_device_hour=price,
        priced_as=priced_as,
    )
    return HourlyPrice(
        usd_per_hour=line.usd_per_hour,
        lines=[line],
        devices=count,
        missing=missing,
        provenance=table.provenance(),
    )


def _unit_price(
    kind: str, product: str, table: PriceTable, cluster: str | None
) -> tuple[float | None, str, str | None]:
    """(price per device hour, which entry, why unknown) for one device of ``product``."""
    instance = table.cluster_instance(cluster)
    if instance is not None:
        name, instance_price = instance
        if instance_price.device_kind == kind:
            return (
                instance_price.usd_per_device_hour,
                f"instance type {name} (${instance_price.usd_per_hour:g}/h / "
                f"{instance_price.devices}) "
                f"for cluster {cluster}",
                None,
            )
    if kind == "cpu":
        if table.cpu_vcpu_usd_per_hour is None:
            return None, "cpu_vcpu_usd_per_hour", _fix("cpu_vcpu_usd_per_hour", table)
        return table.cpu_vcpu_usd_per_hour, "cpu_vcpu_usd_per_hour", None
    entry = table.device_price(product, kind)
    if entry is None:
        return (
            None,
            "no entry",
            f"no {kind} entry in the price table matches {product!r}; "
            + _fix("a devices entry whose match names it", table),
        )
    if entry.usd_per_hour is None:
        return (
            None,
            entry.name,
            f"{entry.name} is a placeholder; " + _fix(f"its usd_per_hour ({entry.name})", table),
        )
    return (
        entry.usd_per_hour,
        f"{entry.name} ({entry.source})" if entry.source else entry.name,
        None,
    )


def _fix(what: str, table: PriceTable) -> str:
    return f"set {what} in {table.path or 'the price table'} (BUDCLUSTER_PRICE_TABLE)"


def given_price(usd_per_hour: float, what: str = "--usd-per-hour") -> HourlyPrice:
    """A price stated by the user for the whole endpoint (no price table involved)."""
    line = DeviceLine(
        kind=GIVEN,
        product="the endpoint",
        count=1,
        unit="endpoint",
        usd_per_device_hour=usd_per_hour,
        priced_as=what,
    )
    return HourlyPrice(
        usd_per_hour=usd_per_hour, lines=[line], devices=1, provenance={"source": what}
    )
