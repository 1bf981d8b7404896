"""The release label has two definitions that must stay one value.

The Kubernetes adapter puts it on every object it applies; the pure ``names`` module reads it
back (which model a pod serves, which Secret a staging left). Pure code cannot import the
adapter (import-linter), and the adapter importing the target package would make the lowest
layer depend on one above it, so each keeps its own copy and this test ties them together.
"""

from __future__ import annotations

from budcluster.adapters.kubernetes import RELEASE_LABEL as ADAPTER_RELEASE_LABEL
from budcluster.adapters.kubernetes import with_release_label
from budcluster.targets.kubernetes.names import RELEASE_LABEL, is_source_secret


def test_the_pure_release_label_is_the_one_the_adapter_applies() -> None:
    assert RELEASE_LABEL == ADAPTER_RELEASE_LABEL


def test_a_secret_the_adapter_labels_is_recognised_as_a_staging_source() -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "model-llama-source", "namespace": "bud-llama"},
    }
    labelled = with_release_label(secret, "model-llama")
    assert is_source_secret(labelled["metadata"])
