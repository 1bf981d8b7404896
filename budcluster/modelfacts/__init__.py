"""Facts about a model (shape, size, dtype) read from its files without loading weights."""

from budcluster.modelfacts.facts import ModelFacts, ModelFactsError, load_model_facts

__all__ = ["ModelFacts", "ModelFactsError", "load_model_facts"]
