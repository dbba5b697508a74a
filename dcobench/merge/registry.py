"""The merger registry: name -> merge(loras, MergeOptions) -> Lora (paper §5.3 and baselines).

Entries import their module on first call, so the DAG checks names without torch. Adding a
merger = one function + one line in ENTRIES.
"""

from __future__ import annotations

import importlib

from dcobench.registry import Registry

ENTRIES = {
    "arithmetic": "dcobench.merge.lora:merge_arithmetic",  # λ1ΔW1 + λ2ΔW2, exact (paper "Merge")
    "cat": "dcobench.merge.lora:merge_cat",
    "svd": "dcobench.merge.dense:merge_svd",
    "ties_svd": "dcobench.merge.dense:merge_ties_svd",
    "dare": "dcobench.merge.dense:merge_dare",
    "ziplora": "dcobench.merge.ziplora:merge_ziplora",  # ZipLoRA (Shah et al. 2023)
}


def _lazy(target: str):
    """A registry entry that imports `module:function` when first called."""
    module, name = target.split(":")

    def merge(loras, opts):
        return getattr(importlib.import_module(module), name)(loras, opts)

    merge.__name__ = name
    return merge


MERGERS: Registry = Registry("merger")
for _name, _target in ENTRIES.items():
    MERGERS.register(_name, _lazy(_target))
