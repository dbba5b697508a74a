"""dcobench: Direct Consistency Optimization benchmark pipeline on SDXL."""

__version__ = "0.1.0"

from dcobench.plugins import load_plugins  # noqa: E402  (after the version: plug-ins may read it)

load_plugins()
