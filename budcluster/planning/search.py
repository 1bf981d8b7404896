"""The search: each device kind in preference order, each node's device groups, the first
plan that fits; NoFeasiblePlan with the closest candidates and advice when none does."""

from __future__ import annotations

from budcluster.errors import ConfigurationError
from budcluster.hardware.inventory import NodeInventory
from budcluster.modelfacts import ModelFacts
from budcluster.planning.accelerator_plan import (
    accelerator_dtype,
    accelerator_plan,
    choose,
    fit_groups,
)
from budcluster.planning.advice import fixes
from budcluster.planning.candidates import Miss
from budcluster.planning.cpu_plan import cpu_attempt, cpu_plan
from budcluster.planning.devices import Occupancy, cuda_groups, hpu_groups, node_name, occupancy
from budcluster.planning.errors import NoFeasiblePlan
from budcluster.planning.models import GIB, PlanRequest, RuntimePlan
from budcluster.planning.scheduling import LeftOut, left_out, scheduling_fixes

DEFAULT_MAX_MODEL_LEN = 8192
AUTO_ORDER = ("cuda", "hpu", "cpu")


def check_facts(facts: ModelFacts) -> None:
    """Refuse facts the memory arithmetic cannot work with."""
    if facts.weight_bytes is None:
        raise ConfigurationError(
            f"model {facts.name}: weight bytes unknown ({'; '.join(facts.notes)}); "
            "point --model at a directory with safetensors files or a GGUF file"
        )
    if not facts.has_attention_shape:
        raise ConfigurationError(
            f"model {facts.name}: layers, KV heads or head_dim missing, so the KV cache cannot "
            "be sized; give a config.json with num_hidden_layers and num_key_value_heads"
        )


def max_model_len(facts: ModelFacts, request: PlanRequest) -> int:
    """The context length asked for, else the model's own capped at the default."""
    limit = facts.max_position_embeddings
    if request.max_model_len is None:
        return min(limit or DEFAULT_MAX_MODEL_LEN, DEFAULT_MAX_MODEL_LEN)
    if limit and request.max_model_len > limit:
        raise ConfigurationError(
            f"--max-model-len {request.max_model_len} exceeds the model's "
            f"max_position_embeddings {limit}; use at most {limit}"
        )
    return request.max_model_len


def best_plan(
    facts: ModelFacts, inventories: list[NodeInventory], request: PlanRequest
) -> RuntimePlan:
    """The first plan that fits, searching device kinds in preference order, on the nodes
    the deployment's pods may go to (taints, cordons, node selector: :mod:`.scheduling`)."""
    check_facts(facts)
    if not inventories:
        raise ConfigurationError("no inventories given; pass at least one --inventory file")
    max_len = max_model_len(facts, request)
    eligible: list[NodeInventory] = []
    excluded: list[LeftOut] = []
    for index, inventory in enumerate(inventories):
        why = left_out(
            inventory, node_name(inventory, index), request.tolerations, request.node_selector
        )
        if why is None:
            # Named as before the others were left out, so an unnamed one keeps its name.
            eligible.append(
                inventory
                if inventory.node_name
                else inventory.model_copy(update={"node_name": node_name(inventory, index)})
            )
        else:
            excluded.append(why)
    if not eligible:
        raise NoFeasiblePlan(
            "no node takes the deployment's pods: "
            + "; ".join(node.describe() for node in excluded),
            [],
            scheduling_fixes(excluded),
        )
    try:
        found = _search(facts, eligible, request, max_len)
    except NoFeasiblePlan as exc:
        if not excluded:
            raise
        raise NoFeasiblePlan(
            exc.reason
            + "; nodes the pods cannot go to, left out: "
            + "; ".join(node.describe() for node in excluded),
            exc.closest,
            [*scheduling_fixes(excluded), *exc.fixes],
        ) from exc
    if not excluded:
        return found
    return found.model_copy(
        update={
            "decisions": [
                *found.decisions,
                "left out, the pods cannot go there: "
                + "; ".join(node.describe() for node in excluded),
            ]
        }
    )


def _search(
    facts: ModelFacts, inventories: list[NodeInventory], request: PlanRequest, max_len: int
) -> RuntimePlan:
    kinds = AUTO_ORDER if request.device == "auto" else (request.device,)
    misses: list[Miss] = []
    occupied: list[Occupancy] = []
    named = [(node_name(inv, i), inv) for i, inv in enumerate(inventories)]
    # A redeploy's own pods go before its new ones start: their devices count as free.
    replacing = request.served_model_name
    for kind in kinds:
        if kind in {"cuda", "hpu"}:
            if request.engine == "llama.cpp":
                continue
            dtype = accelerator_dtype(facts, request)
            groups = [
                g
                for name, inv in named
                for g in (
                    cuda_groups(inv, name, replacing)
                    if kind == "cuda"
                    else hpu_groups(inv, name, replacing)
                )
            ]
            occupied += [o for name, inv in named for o in occupancy(inv, name, kind, replacing)]
            fits = fit_groups(groups, facts, request, dtype, max_len, misses)
            if fits:
                chosen = choose(fits, request.replicas)
                inventory = next(inv for name, inv in named if name == chosen.group.node_name)
                return accelerator_plan(
                    chosen,
                    facts,
                    request,
                    dtype,
                    max_len,
                    inventory,
                    [m.candidate.lacks for m in misses],
                )
        else:
            # AMX nodes first: bf16 tiles make them several times faster than AVX-512 alone.
            ordered = sorted(named, key=lambda p: not (p[1].cpu and p[1].cpu.has_amx))
            for name, inv in ordered:
                attempt = cpu_attempt(inv, name, facts, request, max_len, misses)
                if attempt:
                    memory, dtype, numa = attempt
                    return cpu_plan(
                        inv,
                        name,
                        memory,
                        dtype,
                        numa,
                        facts,
                        request,
                        max_len,
                        [f"{m.candidate.node_name}: {m.candidate.lacks}" for m in misses],
                    )
    closest = sorted((m.candidate for m in misses), key=lambda c: c.shortfall_bytes)[:3]
    searched = ", ".join(kinds)
    reason = (
        f"{facts.name} ({(facts.weight_bytes or 0) / GIB:.1f} GiB of weights, "
        f"{max_len} tokens x {request.concurrency} sequences) fits no {searched} device"
        + ("" if misses else " (no such devices are free in the inventories)")
        + (
            "; devices exist but are in use: " + "; ".join(o.describe() for o in occupied)
            if occupied
            else ""
        )
    )
    raise NoFeasiblePlan(reason, closest, fixes(facts, misses, request, max_len, occupied))
