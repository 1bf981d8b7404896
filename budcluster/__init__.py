"""bud-serve-cluster's library: domain logic and one adapter per outside system.

Nothing in this package needs Prefect; the Prefect layer (``tasks/``, ``flows/``,
``blocks/``) calls into it.
"""

__version__ = "0.1.0"
