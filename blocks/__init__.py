"""Prefect block types. Secrets in them are encrypted client-side (see ``budcluster.crypto``)."""
