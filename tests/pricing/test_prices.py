"""The price table and what a plan's devices cost. Every figure is worked out by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from budcluster.errors import ConfigurationError
from budcluster.hardware.inventory import NodeInventory
from budcluster.modelfacts import load_model_facts
from budcluster.planning import PlanRequest, RuntimePlan, plan
from budcluster.pricing import (
    given_price,
    load_price_table,
    plan_hourly_price,
    usd_per_million_output_tokens,
)
from budcluster.pricing.bill import plan_product

MODELS = Path(__file__).resolve().parents[1] / "fixtures" / "models"


def _h100x8() -> NodeInventory:
    gpus = [
        {"index": i, "product": "NVIDIA H100 80GB HBM3", "memory_total_mib": 81559}
        for i in range(8)
    ]
    return NodeInventory.model_validate({"node_name": "h100x8", "nvidia": {"gpus": gpus}})


def _llama8b_on_one_h100() -> RuntimePlan:
    facts = load_model_facts(MODELS / "Llama-3.1-8B-Instruct")
    return plan(facts, [_h100x8()], PlanRequest(replicas=1))


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prices.yaml"
    path.write_text(text)
    return path


def test_the_packaged_table_states_its_date_source_and_placeholders() -> None:
    table = load_price_table()
    assert table.as_of.isoformat() == "2026-11-09"
    assert "aws.amazon.com/ec2/pricing/on-demand" in table.source
    placeholders = {entry.name for entry in table.devices if entry.usd_per_hour is None}
    assert placeholders == {"L4", "Gaudi2", "Gaudi3"}
    assert all(entry.source for entry in table.devices)


@pytest.mark.parametrize(
    ("product", "kind", "expected"),
    [
        ("NVIDIA H100 80GB HBM3", "cuda", "H100 80GB (SXM)"),
        ("NVIDIA A100-SXM4-40GB", "cuda", "A100 40GB (SXM)"),
        # The longer match wins: the 80GB entry, not the plain A100 one.
        ("NVIDIA A100-SXM4-80GB", "cuda", "A100 80GB (SXM)"),
        ("NVIDIA L4", "cuda", "L4"),
        # Whole words only: an L40S is not an L4.
        ("NVIDIA L40S", "cuda", None),
        ("HL-225", "hpu", "Gaudi2"),
        ("HL-325L", "hpu", "Gaudi3"),
        ("HL-205", "hpu", None),
        ("HL-325", "hpu", "Gaudi3"),
        # Kinds must agree: a CUDA product never takes a Gaudi price.
        ("HL-225", "cuda", None),
    ],
)
def test_products_match_whole_words_longest_first(
    product: str, kind: str, expected: str | None
) -> None:
    entry = load_price_table().device_price(product, kind)
    assert (entry.name if entry else None) == expected


def test_one_h100_replica_costs_one_gpu_hour() -> None:
    result = _llama8b_on_one_h100()
    assert plan_product(result) == "NVIDIA H100 80GB HBM3"
    price = plan_hourly_price(result, load_price_table())
    # 1 replica x TP 1 = 1 GPU at $6.88/h.
    assert price.devices == 1
    assert price.usd_per_hour == pytest.approx(6.88)
    assert price.missing is None
    assert price.provenance["as_of"] == "2026-11-09"
    assert price.describe().startswith("$6.8800/h (1 x GPU NVIDIA H100 80GB HBM3")


def test_replicas_times_tp_devices_and_per_replica() -> None:
    facts = load_model_facts(MODELS / "Llama-3.1-70B-Instruct")
    result = plan(facts, [_h100x8()], PlanRequest(max_model_len=8192, concurrency=16))
    assert (result.tensor_parallel_size, result.replicas) == (4, 2)
    table = load_price_table()
    # 2 replicas x TP 4 = 8 GPUs x $6.88 = $55.04/h; one replica is half of it.
    assert plan_hourly_price(result, table).usd_per_hour == pytest.approx(55.04)
    assert plan_hourly_price(result, table, per_replica=True).usd_per_hour == pytest.approx(27.52)


def test_a_mig_slice_is_its_share_of_the_gpu() -> None:
    sliced = _llama8b_on_one_h100().model_copy(
        update={"device_product": "NVIDIA A100-SXM4-40GB MIG 3g.20gb"}
    )
    price = plan_hourly_price(sliced, load_price_table())
    # 3 of 7 compute slices of a $2.7447/h A100 40GB.
    assert price.devices == pytest.approx(3 / 7)
    assert price.usd_per_hour == pytest.approx(2.7447 * 3 / 7)


def test_older_plans_without_a_product_are_read_from_their_labels() -> None:
    older = _llama8b_on_one_h100().model_copy(update={"device_product": None})
    assert plan_product(older) == "NVIDIA H100 80GB HBM3"


def test_cpu_plans_pay_for_the_vcpus_they_reserve() -> None:
    facts = load_model_facts(MODELS / "Qwen2.5-0.5B-Instruct")
    node = NodeInventory.model_validate(
        {
            "node_name": "cpu-1",
            "cpu": {"model_name": "Intel Xeon Gold 6430", "logical_cpus": 16},
            "memory": {"total_mib": 65536},
        }
    )
    result = plan(facts, [node], PlanRequest(max_model_len=2048))
    assert result.device_kind == "cpu" and result.resources["requests"]["cpu"] == "16"
    price = plan_hourly_price(result, load_price_table())
    # 16 vCPUs x $0.0408 = $0.6528/h.
    assert price.lines[0].unit == "vCPU" and price.devices == 16
    assert price.usd_per_hour == pytest.approx(0.6528)


def test_a_cluster_mapped_to_an_instance_type_is_priced_per_device_of_it(tmp_path: Path) -> None:
    text = (
        (Path(load_price_table().path))
        .read_text()
        .replace("clusters: {}", "clusters:\n  lab: {instance_type: p4d.24xlarge}")
    )
    table = load_price_table(_write(tmp_path, text))
    result = _llama8b_on_one_h100()
    on_lab = plan_hourly_price(result, table, "lab")
    # p4d.24xlarge: $21.957642/h over 8 GPUs = $2.74470525 per GPU hour.
    assert on_lab.usd_per_hour == pytest.approx(21.957642 / 8)
    assert "instance type p4d.24xlarge" in on_lab.lines[0].priced_as
    # Another cluster keeps the per-device price.
    assert plan_hourly_price(result, table, "other").usd_per_hour == pytest.approx(6.88)


def test_placeholders_and_unknown_products_say_how_to_fix_it(tmp_path: Path) -> None:
    table = load_price_table()
    l4 = _llama8b_on_one_h100().model_copy(update={"device_product": "NVIDIA L4"})
    price = plan_hourly_price(l4, table)
    assert price.usd_per_hour is None
    assert "L4 is a placeholder" in (price.missing or "")
    assert "BUDCLUSTER_PRICE_TABLE" in (price.missing or "")
    l40s = l4.model_copy(update={"device_product": "NVIDIA L40S"})
    assert "no cuda entry in the price table matches 'NVIDIA L40S'" in (
        plan_hourly_price(l40s, table).missing or ""
    )


def test_bad_tables_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"devices\.0\.usd_per_hour"):
        load_price_table(
            _write(
                tmp_path,
                "as_of: 2026-01-01\nsource: mine\ndevices:\n"
                "  - {name: X, kind: cuda, match: [X], usd_per_hour: -1}\n",
            )
        )
    with pytest.raises(ConfigurationError, match=r"clusters\.lab\.instance_type 'p9' is not in"):
        load_price_table(
            _write(
                tmp_path, "as_of: 2026-01-01\nsource: mine\nclusters: {lab: {instance_type: p9}}\n"
            )
        )
    with pytest.raises(ConfigurationError, match="cannot read it"):
        load_price_table(tmp_path / "absent.yaml")


def test_cost_per_million_output_tokens() -> None:
    # $6.88/h at 1000 tok/s: 3.6M tokens an hour, so $6.88 / 3.6 = $1.9111 per million.
    assert usd_per_million_output_tokens(6.88, 1000.0) == pytest.approx(6.88 / 3.6)
    assert usd_per_million_output_tokens(None, 1000.0) is None
    assert usd_per_million_output_tokens(6.88, 0.0) is None
    assert given_price(2.5).usd_per_hour == 2.5
