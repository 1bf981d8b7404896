"""A registered cluster as one run's tasks pass it along: looked up in the store once."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

ClusterKind = Literal["hosts", "kubernetes", "openshift"]


class ClusterRef(BaseModel):
    """Which target to open and with which credentials block; holds no secret.

    A flow resolves the cluster's name to this once and hands it to each task, so the
    tasks do not each read the store again. Each task still opens the credentials block
    itself and closes it when it ends: decrypted credentials (and an SSH key file) live
    for one task, never for the whole run.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    kind: ClusterKind
    credentials_block: str

    def __str__(self) -> str:
        return self.name
