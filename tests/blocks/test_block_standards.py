"""Prefect's own standard checks for every block type of the project."""

from __future__ import annotations

import pytest
from prefect.blocks.core import Block
from prefect.testing.standard_test_suites import BlockStandardTestSuite

from blocks.registry import CREDENTIAL_BLOCK_TYPES


@pytest.mark.parametrize("block", CREDENTIAL_BLOCK_TYPES, indirect=True)
class TestAllBlocks(BlockStandardTestSuite):
    @pytest.fixture
    def block(self, request: pytest.FixtureRequest) -> type[Block]:
        return request.param  # type: ignore[no-any-return]


def test_block_slugs_do_not_collide_with_prefect_integrations() -> None:
    # prefect-aws registers "aws-credentials"; a shared server may have it.
    slugs = {b.get_block_type_slug() for b in CREDENTIAL_BLOCK_TYPES}
    assert slugs == {
        "bud-kubeconfig-credentials",
        "bud-host-inventory",
        "bud-s3-registry",
        "bud-aws-credentials",
        "bud-azure-credentials",
    }
