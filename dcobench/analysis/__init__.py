"""Analyses: noise distance per timestep (Fig 8c), LoRA column cosine (Fig 10)."""
