"""Scoring: DINOv2 / SigLIP / CLIP embedders and the metric registry."""
