"""A guidance setting as one value: `Guide.parse("rg3")` at the edge (config, CLI options),
`guide.name` for folder names; index.csv and score tables carry its fields as columns
(guide, guidance, w_rg, w_text) so nothing downstream parses names. No torch."""

from __future__ import annotations

import re
from dataclasses import dataclass

KINDS = ("cfg", "rg")  # classifier-free guidance | reward guidance (paper §4.2)
# a valid guide name: cfg, or rg<ω> with ω_rg > 0 (the config schema's pattern)
NAME_PATTERN = r"^(cfg|rg([1-9][0-9]*(\.[0-9]+)?|0\.[0-9]*[1-9][0-9]*))$"


@dataclass(frozen=True)
class Guide:
    """`kind` cfg | rg; `w_rg` is ω_rg for reward guidance (None for cfg)."""

    kind: str
    w_rg: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"guide kind must be cfg or rg, got {self.kind!r}")
        if (self.kind == "rg") != (self.w_rg is not None):
            raise ValueError("reward guidance needs w_rg; cfg takes none")
        if self.w_rg is not None and not self.w_rg > 0:
            # ω_rg = 0 drops ε_θ from the combination: the pretrained model with CFG, not RG
            raise ValueError(f"reward guidance needs ω_rg > 0, got {self.w_rg:g} (rg0 is the "
                             "pretrained model with CFG: use the 'pretrained' variant)")

    @classmethod
    def parse(cls, name: str) -> Guide:
        """'cfg' -> Guide('cfg'); 'rg3' / 'rg2.5' -> Guide('rg', 3.0 / 2.5). The config schema's
        guide pattern is NAME_PATTERN too (dcobench.spec.schema writes it in)."""
        if name == "cfg":
            return cls("cfg")
        if isinstance(name, str) and re.fullmatch(r"rg-?[0-9]+(\.[0-9]+)?", name):
            return cls("rg", float(name[2:]))  # rg0, rg-1: refused by __post_init__, in words
        raise ValueError(f"bad guide name {name!r}: use 'cfg' or 'rg<ω>' such as 'rg3'")

    def columns(self, w_text: float) -> dict:
        """The guidance columns of index.csv and score tables (w_rg None for cfg)."""
        return {"guide": self.name, "guidance": self.kind, "w_rg": self.w_rg, "w_text": w_text}

    @property
    def name(self) -> str:
        """Folder / column name: 'cfg', 'rg3', 'rg2.5'."""
        return "cfg" if self.kind == "cfg" else f"rg{self.w_rg:g}"
