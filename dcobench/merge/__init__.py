"""Merging a subject LoRA with a style LoRA: arithmetic, ZipLoRA, SVD-based (paper §5.3)."""
