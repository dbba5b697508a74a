"""Merge ids: the folder name of a merge, "<variant>-<merger>[_w<λ1>_<λ2>]", built and parsed
in one place (the DAG, the merge rule and the report all use these). The variant part names the
LoRA taken from each side: "dco" merges the subject's and the style's `dco` LoRAs,
"dco+dbsv" the subject's `dco` LoRA with the style's `dbsv` one (when the two kinds are trained
at different settings). No torch."""

from __future__ import annotations

import re

WEIGHTLESS = {"ziplora"}  # mergers that ignore λ: one merge id, no λ grid


def _fmt(x: float) -> str:
    return f"{x:g}".replace("-", "m").replace(".", "p")


def merge_id(variant: str, merger: str, weights: tuple[float, float] = (1.0, 1.0)) -> str:
    """Folder name of a merge: "dco-arithmetic", or "dco-arithmetic_w0p5_1" for λ ≠ (1, 1)."""
    if tuple(float(w) for w in weights) == (1.0, 1.0) or merger in WEIGHTLESS:
        return f"{variant}-{merger}"
    return f"{variant}-{merger}_w{_fmt(weights[0])}_{_fmt(weights[1])}"


def parse_merge_id(name: str) -> tuple[str, str, tuple[float, float]]:
    """Inverse of merge_id: (variant, merger, (λ_subject, λ_style))."""
    match = re.fullmatch(r"([a-z0-9_]+(?:\+[a-z0-9_]+)?)-([a-z0-9_]+?)(?:_w(m?[0-9p]+)_(m?[0-9p]+))?",
                         name)
    if not match:
        raise ValueError(f"merge id {name!r} is not <variant>[+<style variant>]-<merger>[_w<λ1>_<λ2>]")
    variant, merger, *lams = match.groups()
    weights = tuple(float(x.replace("m", "-").replace("p", ".")) if x else 1.0 for x in lams)
    return variant, merger, weights


def pair_variants(variant: str) -> tuple[str, str]:
    """(subject variant, style variant) of a merge id's variant part: "dco" -> ("dco", "dco"),
    "dco+dbsv" -> ("dco", "dbsv")."""
    subject, _, style = variant.partition("+")
    return subject, style or subject


def weight_grid(weights: list) -> list[tuple[float, float]]:
    """merge.weights as a list of (λ_subject, λ_style): one pair or a list of pairs."""
    pairs = [weights] if weights and not isinstance(weights[0], list | tuple) else weights
    return [(float(a), float(b)) for a, b in pairs]


def with_weights(name: str, grid: list[tuple[float, float]]) -> list[str]:
    """A merge id over the λ grid: "dco-arithmetic" -> one id per λ pair; an id that names its
    λ (or a weightless merger) stays as it is."""
    variant, merger, weights = parse_merge_id(name)
    if weights != (1.0, 1.0) or merger in WEIGHTLESS:
        return [name]
    return list(dict.fromkeys(merge_id(variant, merger, w) for w in grid))
