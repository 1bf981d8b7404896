"""Placement across clusters (``cluster: auto``): plan the model on every cluster, rank. Pure.

The rule, in order:

1. **Fits.** Clusters where the planner finds a plan on the recorded inventory come first;
   the others are listed with the planner's reason.
2. **Lowest cost per million output tokens.** Estimated per cluster: the latest measured
   cost of this model on that cluster when every fitting cluster has one; otherwise the
   hourly price of one replica's devices for all of them, as a stated proxy (a measured
   $/1M tokens and a $/hour cannot be compared with each other, so one basis is used for
   the whole ranking). A cluster whose price is unknown ranks after every priced one.
3. **Fewest devices** per replica (accelerators; a CPU plan counts as one device).
4. The cluster name, so the answer is the same every time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, Field

from budcluster.errors import BudClusterError
from budcluster.hardware.inventory import NodeInventory
from budcluster.modelfacts import ModelFacts
from budcluster.planning.errors import NoFeasiblePlan
from budcluster.planning.models import PlanRequest, RuntimePlan
from budcluster.planning.planner import plan
from budcluster.pricing.bill import plan_hourly_price
from budcluster.pricing.table import PriceTable

AUTO_CLUSTER = "auto"

RULE = (
    "fits, then lowest cost per million output tokens (measured on that cluster when every "
    "fitting cluster has a measurement, else the hourly price of one replica's devices as a "
    "proxy), then fewest devices per replica, then name"
)

Basis = Literal["measured", "device-hour"]


class MeasuredEstimate(BaseModel):
    usd_per_million_output_tokens: float
    source: str = Field(description="Which run and level it comes from.")


class ClusterOption(BaseModel):
    """What planning the model on one cluster gave."""

    cluster: str
    plan: RuntimePlan | None = None
    unfit: str | None = Field(None, description="Why no plan fits there.")
    measured: MeasuredEstimate | None = None
    usd_per_replica_hour: float | None = None
    price: str = Field("", description="The price in words, or why it is unknown.")

    @property
    def devices_per_replica(self) -> int:
        if self.plan is None:
            return 0
        return 1 if self.plan.device_kind == "cpu" else self.plan.tensor_parallel_size

    def hardware(self) -> str:
        if self.plan is None:
            return ""
        product = self.plan.device_product or self.plan.device_kind
        return (
            f"{self.plan.engine} on {self.plan.device_kind} ({product}), "
            f"TP {self.plan.tensor_parallel_size} x {self.plan.replicas} replica(s)"
        )


class RankedOption(BaseModel):
    rank: int
    cluster: str
    chosen: bool
    fits: bool
    hardware: str
    devices_per_replica: int
    estimate: float | None = Field(description="The figure compared, on the ranking's basis.")
    measured: str | None
    price: str
    why: str


class PlacementDecision(BaseModel):
    chosen: str
    plan: RuntimePlan
    basis: Basis
    rule: str = RULE
    ranked: list[RankedOption]


def plan_on_clusters(
    facts: ModelFacts,
    inventories: Mapping[str, list[NodeInventory]],
    request: PlanRequest,
    prices: PriceTable,
    measured: Mapping[str, MeasuredEstimate] | None = None,
) -> list[ClusterOption]:
    """Plan ``facts`` on each cluster's inventories and price one replica of each plan."""
    options: list[ClusterOption] = []
    for cluster, nodes in sorted(inventories.items()):
        if not nodes:
            options.append(
                ClusterOption(
                    cluster=cluster,
                    unfit="no node recorded; run detect-nodes on it",
                )
            )
            continue
        try:
            found = plan(facts, nodes, request)
        except NoFeasiblePlan as exc:
            options.append(ClusterOption(cluster=cluster, unfit=exc.reason))
            continue
        except BudClusterError as exc:
            options.append(ClusterOption(cluster=cluster, unfit=str(exc)))
            continue
        price = plan_hourly_price(found, prices, cluster, per_replica=True)
        options.append(
            ClusterOption(
                cluster=cluster,
                plan=found,
                measured=(measured or {}).get(cluster),
                usd_per_replica_hour=price.usd_per_hour,
                price=price.describe(),
            )
        )
    return options


def _estimate(option: ClusterOption, basis: Basis) -> float | None:
    if basis == "measured":
        return option.measured.usd_per_million_output_tokens if option.measured else None
    return option.usd_per_replica_hour


def _figure(value: float | None, basis: Basis) -> str:
    if value is None:
        return "unknown"
    return f"${value:.4f} per 1M output tokens" if basis == "measured" else f"${value:.4f}/h"


def _why(option: ClusterOption, winner: ClusterOption, basis: Basis) -> str:
    mine, best = _estimate(option, basis), _estimate(winner, basis)
    if option is winner:
        reason = f"chosen: fits; {_figure(mine, basis)}"
        return reason + f"; {option.devices_per_replica} device(s) per replica"
    if option.plan is None:
        return f"not chosen: does not fit ({option.unfit})"
    if mine is None:
        return f"not chosen: fits, but its price is unknown ({option.price})"
    if best is not None and mine > best:
        return f"not chosen: fits, but {_figure(mine, basis)} vs {_figure(best, basis)}"
    if option.devices_per_replica > winner.devices_per_replica:
        return (
            f"not chosen: same cost, but {option.devices_per_replica} devices per replica vs "
            f"{winner.devices_per_replica}"
        )
    return f"not chosen: ties with {winner.cluster} on cost and devices; the name decides"


def rank_clusters(options: list[ClusterOption]) -> PlacementDecision:
    """Rank by the module's rule; NoFeasiblePlan when the model fits no cluster."""
    fitting = [o for o in options if o.plan is not None]
    if not fitting:
        reasons = "; ".join(f"{o.cluster}: {o.unfit}" for o in options) or "no cluster recorded"
        raise NoFeasiblePlan(
            f"the model fits no registered cluster ({reasons})",
            [],
            [
                "register a cluster with the devices it needs, or run detect-nodes on one",
                "or lower max_model_len or concurrency, or choose a quantized model",
            ],
        )
    basis: Basis = "measured" if all(o.measured for o in fitting) else "device-hour"

    def key(option: ClusterOption) -> tuple[bool, float, int, str]:
        value = _estimate(option, basis)
        return (value is None, value or 0.0, option.devices_per_replica, option.cluster)

    ordered = sorted(fitting, key=key) + sorted(
        (o for o in options if o.plan is None), key=lambda o: o.cluster
    )
    winner = ordered[0]
    assert winner.plan is not None
    ranked = [
        RankedOption(
            rank=number,
            cluster=option.cluster,
            chosen=option is winner,
            fits=option.plan is not None,
            hardware=option.hardware(),
            devices_per_replica=option.devices_per_replica,
            estimate=_estimate(option, basis),
            measured=(
                f"${option.measured.usd_per_million_output_tokens:.4f} per 1M output tokens "
                f"({option.measured.source})"
                if option.measured
                else None
            ),
            price=option.price,
            why=_why(option, winner, basis),
        )
        for number, option in enumerate(ordered, start=1)
    ]
    return PlacementDecision(chosen=winner.cluster, plan=winner.plan, basis=basis, ranked=ranked)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def placement_markdown(decision: PlacementDecision) -> str:
    """The ranked alternatives, for the plan artifact."""
    basis = (
        "measured cost per 1M output tokens"
        if decision.basis == "measured"
        else "hourly price of one replica's devices (proxy: not every fitting cluster has a "
        "measured cost)"
    )
    lines = [
        "## Placement across clusters",
        "",
        f"Chosen: **{decision.chosen}**. Rule: {decision.rule}. Compared on: {basis}.",
        "",
        "| rank | cluster | fits | hardware | devices/replica | estimate | measured | why |",
        "|---:|---|---|---|---:|---:|---|---|",
    ]
    for option in decision.ranked:
        estimate = _figure(option.estimate, decision.basis) if option.fits else ""
        cells = [
            str(option.rank),
            option.cluster,
            "yes" if option.fits else "no",
            option.hardware,
            str(option.devices_per_replica) if option.fits else "",
            estimate,
            option.measured or "",
            option.why,
        ]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    lines.append("")
    return "\n".join(lines)
