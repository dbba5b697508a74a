"""The claims file's model (config/world_claims.yaml, docs/claims.md): tests, claims and the
protocol (δ, non-inferiority margins, level, min_concepts), parsed and checked. A claim
registered under protocol 2 that names fewer concepts than min_concepts (per random factor of
its design) is refused at load, with an error naming it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dcobench.yamlio import load_yaml

KINDS = ("difference", "log_ratio", "slope", "frontier_area")
HYPOTHESES = ("superiority", "non_inferiority")
MIN_CONCEPTS = 4  # the fewest concepts (per random factor) a test may use: docs/claims.md


class MissingArm(ValueError):
    """An arm of a test is absent from the run's tables (the test is not run, not failed)."""


@dataclass(frozen=True)
class Test:
    """One paired comparison, oriented so that the claim predicts a large effect: at least δ
    (superiority) or above −margin (non_inferiority)."""

    kind: str
    a: str
    b: str | None = None
    metric: str | None = None
    guide: str = "cfg"
    guides: tuple[str, ...] = ()
    x: str | None = None
    y: str | None = None
    hypothesis: str = "superiority"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"test kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.hypothesis not in HYPOTHESES:
            raise ValueError(f"hypothesis {self.hypothesis!r} is not one of {', '.join(HYPOTHESES)}")
        need = {"difference": ("b", "metric"), "log_ratio": ("b", "metric"),
                "slope": ("metric", "guides"), "frontier_area": ("b", "x", "y", "guides")}
        missing = [k for k in need[self.kind] if not getattr(self, k)]
        if missing:
            raise ValueError(f"a {self.kind} test needs {', '.join(missing)}")

    @property
    def delta_key(self) -> str:
        return self.kind if self.kind in ("frontier_area", "slope", "log_ratio") else self.metric

    def label(self) -> str:
        if self.kind == "frontier_area":
            return f"area({self.a}) − area({self.b}) in ({self.x}, {self.y}), {'/'.join(self.guides)}"
        if self.kind == "slope":
            return f"slope of {self.metric} on ω_rg, {self.a}, {'/'.join(self.guides)}"
        op = "log " if self.kind == "log_ratio" else ""
        ni = " (non-inferiority)" if self.hypothesis == "non_inferiority" else ""
        return (f"{op}{self.metric}: {self.a} − {self.b}"
                + ("" if self.kind == "log_ratio" else f" @ {self.guide}") + ni)


@dataclass(frozen=True)
class Claim:
    id: str
    statement: str
    group: str  # subject | style | merge | noise_distance
    tests: tuple[Test, ...]
    prompt_sets: tuple[str, ...] = ()
    experiment: str = ""
    secondary: bool = False
    combine: str = "all_of"
    concepts: tuple[str, ...] = ()  # only these concepts' units (empty: every concept of the group)
    revises: str = ""  # the id of the claim this one revises (a revision never replaces it)
    reason: str = ""  # why the revision (required with `revises`)
    protocol: int = 1  # the protocol version the claim was registered under
    fixed_styles: bool = False  # merge: a claim about the styles it names (inference over subjects)
    # citations, not part of the test (a later edit does not re-register the claim):
    paper_ref: str = field(default="", compare=False)  # the paper's section and number
    paper_arms: tuple[tuple[str, str], ...] = field(default=(), compare=False)  # arm -> paper variant


@dataclass(frozen=True)
class Protocol:
    claims: tuple[Claim, ...]
    deltas: dict[str, float]
    resamples: int = 10_000  # protocol version 1's bootstrap (kept for its history; unused)
    seed: int = 0
    level: float = 0.95
    source: str = ""
    version: int = 1
    margins: dict[str, float] = field(default_factory=dict)  # non-inferiority margins
    min_concepts: int = MIN_CONCEPTS

    @property
    def alpha(self) -> float:
        """The one-sided level of each direction (held, not held)."""
        return (1.0 - self.level) / 2.0

    def bound(self, test: Test) -> float:
        """+δ for a superiority test, −margin for a non-inferiority one."""
        if test.hypothesis == "non_inferiority":
            return -self.margins[test.delta_key]
        return self.deltas[test.delta_key]


CLAIM_KEYS = {"id", "statement", "group", "tests", "prompt_sets", "experiment", "secondary",
              "combine", "note", "concepts", "revises", "reason", "protocol", "fixed_styles",
              "paper_ref", "paper_arms"}


def random_levels(claim: Claim, concepts: list[str] | tuple[str, ...]) -> dict[str, int]:
    """The number of levels of each random factor of a claim's design on these concepts:
    {concept: C}, or for merge pairs {subject: S, style: T} ({subject: S} with fixed styles)."""
    if claim.group != "merge":
        return {"concept": len(set(concepts))}
    parts = [c.split("__", 1) for c in concepts]
    levels = {"subject": len({p[0] for p in parts})}
    if not claim.fixed_styles:
        levels["style"] = len({p[-1] for p in parts})
    return levels


def load_protocol(path: str | Path) -> Protocol:
    """Parse and check a claims file; ValueError naming the file and the claim."""
    return parse_protocol(load_yaml(path), str(path))  # strict: a key given twice is refused


def _claim(c: dict) -> Claim:
    tests = tuple(Test(**{k: tuple(v) if k == "guides" else v for k, v in t.items()})
                  for t in c["tests"])
    return Claim(c["id"], c["statement"], c["group"], tests,
                 tuple(c.get("prompt_sets") or ()), c.get("experiment", ""),
                 bool(c.get("secondary", False)), c.get("combine", "all_of"),
                 tuple(c.get("concepts") or ()), c.get("revises") or "",
                 str(c.get("reason") or "").strip(), int(c.get("protocol", 1)),
                 bool(c.get("fixed_styles", False)), str(c.get("paper_ref") or "").strip(),
                 tuple(sorted((c.get("paper_arms") or {}).items())))


def parse_protocol(raw: dict, source: str) -> Protocol:
    """A claims file's parsed yaml as a Protocol; `source` names it in errors. A revision
    (`revises: <id>`) must name an earlier claim and say why (`reason`); a claim registered
    under protocol 2 that names fewer concepts than min_concepts (per random factor) is
    refused."""
    if not isinstance(raw, dict):
        raise ValueError(f"{source}: not a mapping of bootstrap, delta and claims")
    boot = raw.get("inference") or raw.get("bootstrap") or {}  # version 2 / version 1
    deltas, claims = raw.get("delta") or {}, []
    margins = raw.get("margin") or {}
    min_concepts = int(boot.get("min_concepts", MIN_CONCEPTS))
    if int(raw.get("version", 1)) >= 2 and boot.get("method", "cluster_t") != "cluster_t":
        raise ValueError(f"{source}: inference method {boot.get('method')!r} is not cluster_t "
                         "(the one protocol version 2 defines, docs/claims.md)")
    for i, c in enumerate(raw.get("claims") or []):
        where = f"{source}: claims[{i}] ({c.get('id', '?') if isinstance(c, dict) else '?'})"
        if not isinstance(c, dict):
            raise ValueError(f"{where}: a claim is a mapping, got {c!r}")
        unknown = sorted(set(c) - CLAIM_KEYS)
        if unknown:
            raise ValueError(f"{where}: unknown keys {unknown} (known: {', '.join(sorted(CLAIM_KEYS))})")
        try:
            claim = _claim(c)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"{where}: {exc}") from exc
        if claim.combine != "all_of":
            raise ValueError(f"{where}: combine must be all_of, got {claim.combine!r}")
        if any(claim.id == earlier.id for earlier in claims):
            raise ValueError(f"{where}: the id {claim.id!r} is used twice")
        if claim.revises and not any(claim.revises == earlier.id for earlier in claims):
            raise ValueError(f"{where}: revises {claim.revises!r}, which is not an earlier claim id")
        if claim.revises and not claim.reason:
            raise ValueError(f"{where}: a revision needs a `reason`")
        if claim.fixed_styles and claim.group != "merge":
            raise ValueError(f"{where}: fixed_styles is for merge claims only")
        for t in claim.tests:
            if t.delta_key not in deltas:
                raise ValueError(f"{where}: no delta for {t.delta_key!r} in {source} (key delta)")
            if t.hypothesis == "non_inferiority" and t.delta_key not in margins:
                raise ValueError(f"{where}: a non-inferiority test needs a margin for "
                                 f"{t.delta_key!r} in {source} (key margin)")
        if claim.protocol >= 2 and claim.concepts:
            few = {f: n for f, n in random_levels(claim, claim.concepts).items() if n < min_concepts}
            if few:
                raise ValueError(
                    f"{where}: refused: {', '.join(f'{n} {f}s' for f, n in few.items())} "
                    f"< min_concepts {min_concepts}, the fewest the simulation supports "
                    "(docs/claims.md); name more concepts"
                    + (", or fix the styles (fixed_styles: true)" if "style" in few else ""))
        claims.append(claim)
    if not claims:
        raise ValueError(f"{source}: no claims")
    return Protocol(tuple(claims), dict(deltas), int(boot.get("resamples", 10_000)),
                    int(boot.get("seed", 0)), float(boot.get("level", 0.95)), source,
                    int(raw.get("version", 1)), dict(margins), min_concepts)
