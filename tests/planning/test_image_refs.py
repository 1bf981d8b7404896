"""OCI image references: the grammar of distribution/reference, checked as text."""

from __future__ import annotations

import pytest

from budcluster.planning.image_refs import check_image_reference
from budcluster.planning.images import DEFAULT_IMAGES


def test_every_default_image_is_a_valid_reference() -> None:
    for key, image in DEFAULT_IMAGES.items():
        assert check_image_reference(image) == image, key


@pytest.mark.parametrize(
    "reference",
    [
        "",
        "a" * 256,
        "repo:" + "t" * 129,
        "repo:-tag",
        "repo/",
        "/repo",
        "repo//x",
        "repo..x",
        "host:port/repo",
        "repo@sha256:short",
        "repo@sha256:" + "g" * 64,
        "repo\nx",
        "repo:tag\n",
        " repo",
        "$(id)",
        "repo;rm",
        "{{ lookup('pipe','id') }}",
        "-repo",
    ],
)
def test_bad_references_are_refused(reference: str) -> None:
    with pytest.raises(ValueError, match="not an OCI image reference"):
        check_image_reference(reference)


@pytest.mark.parametrize(
    "reference",
    [
        "ubuntu",
        "library/ubuntu:22.04",
        "Registry.Example.COM:443/a/b_c__d---e.f:Tag_1.0-x",
        "repo@sha256:" + "0" * 64,
        "repo:1@sha512:" + "f" * 128,
        "[2001:db8::1]:5000/repo",
        "localhost:5000/a",
    ],
)
def test_good_references_pass_unchanged(reference: str) -> None:
    assert check_image_reference(reference) == reference
