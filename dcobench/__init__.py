"""dcobench: Direct Consistency Optimization benchmark pipeline on SDXL."""

__version__ = "0.1.0"
