"""Training methods: an objective plus whether class-prior rows join the batch."""

from __future__ import annotations

from dataclasses import dataclass

from dcobench.registry import Registry


@dataclass(frozen=True)
class Method:
    """`objective` names an entry of losses.OBJECTIVES; `prior` adds DB+p.p. prior rows."""

    objective: str
    prior: bool
    label: str


METHODS: Registry[Method] = Registry("method")
METHODS.register("dco", Method("dco", False, "DCO"))
METHODS.register("db", Method("db", False, "DreamBooth"))
METHODS.register("dbpp", Method("db", True, "DreamBooth + p.p."))
