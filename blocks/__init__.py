"""Prefect block types. Secrets in them are encrypted client-side (see ``budcluster.crypto``)."""

__all__: list[str] = []
