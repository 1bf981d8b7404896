"""One adapter per outside system. Pure modules never import from here.

Each adapter has its own error types, derived from :mod:`budcluster.errors`, and
chains the original error as the cause (except where the cause could carry a secret).
"""

__all__: list[str] = []
