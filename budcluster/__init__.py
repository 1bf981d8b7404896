"""bud-serve-cluster's library: domain logic and one adapter per outside system.

Nothing in this package outside ``cli/`` needs Prefect; the Prefect layer (``tasks/``,
``flows/``, ``blocks/``) calls into it. The ``budcluster`` command is the one composition
root allowed to load blocks, and it does so only inside the commands that need them.
"""

__version__ = "0.1.0"

__all__: list[str] = []
