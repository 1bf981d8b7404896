"""The declarative model catalogue: its schema, the reconcile planner and baselines."""

from budcluster.catalogue.reconcile import Action, ActionKind, StoredDeployment, plan_reconcile
from budcluster.catalogue.schema import (
    BaselineKind,
    BaselinePolicy,
    Catalogue,
    CatalogueEntry,
    load_catalogue,
    parse_catalogue,
)

__all__ = [
    "Action",
    "ActionKind",
    "BaselineKind",
    "BaselinePolicy",
    "Catalogue",
    "CatalogueEntry",
    "StoredDeployment",
    "load_catalogue",
    "parse_catalogue",
    "plan_reconcile",
]
