"""Concept folders (images + concept.yaml) and procedural demo concepts."""

from dcobench.data.concept import (
    Concept,
    ConceptError,
    load_concept,
    validate_concept,
)

__all__ = ["Concept", "ConceptError", "load_concept", "validate_concept"]
