"""Prices of the hardware a deployment runs on, and cost per million output tokens. Pure.

``table`` is the user-editable price table (``budcluster/pricing/prices.yaml`` by default),
``bill`` what a runtime plan's devices cost per hour, ``cost`` the join with measured
throughput.
"""

from budcluster.pricing.bill import DeviceLine, HourlyPrice, given_price, plan_hourly_price
from budcluster.pricing.cost import usd_per_million_output_tokens
from budcluster.pricing.table import PriceTable, default_price_table_path, load_price_table

__all__ = [
    "DeviceLine",
    "HourlyPrice",
    "PriceTable",
    "default_price_table_path",
    "given_price",
    "load_price_table",
    "plan_hourly_price",
    "usd_per_million_output_tokens",
]
