"""The procedural world: a text-to-image domain dcobench pretrains itself (see docs/world.md).

vocab (attributes, captions), scenes (seeded splits), render, concepts (personalization
folders), oracle (attribute reader + metrics), models / pretrain / build / gates (the presets
world-sdxl, world-siglip, world-dinov2, world-oracle), figures.
"""
