"""TrainOptions: one training run's settings, checked when built (the `train` stage's edge).
Declared, one field per option with its spec, in the torch-free `dcobench.spec.train`."""

from dcobench.spec.train import LORA_TARGETS, OVERRIDE_KEYS, TrainOptions

__all__ = ["LORA_TARGETS", "OVERRIDE_KEYS", "TrainOptions"]
