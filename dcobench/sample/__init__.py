"""Sampling: CFG and reward guidance (paper §4.2) over prompts × seeds."""
