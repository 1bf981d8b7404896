"""The Prefect workspace this process saves blocks to, and the record of what it sealed."""

from __future__ import annotations

import logging

from prefect.settings import PREFECT_API_URL, PREFECT_HOME

from budcluster.crypto import CryptoError, Keyring
from budcluster.crypto.workspaces import record_use

logger = logging.getLogger(__name__)


def current_workspace() -> str:
    """The API URL, or the local database an ephemeral Prefect uses when there is none."""
    url = PREFECT_API_URL.value()
    if url:
        return str(url).rstrip("/")
    return f"ephemeral:{PREFECT_HOME.value()}"


def record_sealing(keyring: Keyring) -> None:
    """Note that this workspace may now hold blocks under the keyring's active key."""
    try:
        record_use(keyring.directory, current_workspace(), {keyring.active_key_id})
    except (OSError, CryptoError) as exc:
        # A read-only key directory (a worker's mounted copy) cannot keep the record; the
        # block is still sealed and bound. Rotation then relies on scanning the API.
        logger.warning(
            "could not record in %s that %s holds blocks sealed with key %s: %s",
            keyring.directory,
            current_workspace(),
            keyring.active_key_id,
            exc,
        )
