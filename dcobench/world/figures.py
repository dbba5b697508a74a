"""Figures a person wants to look at: the pretrained world model on held-out compositions
(prompt above, oracle reading below each image) and the concepts' reference sheets."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from dcobench.io import save_png_atomic

from .oracle import HEADS, head_probs
from .vocab import POSITIONS

CELL = 128  # displayed image size (nearest-neighbour upscaling of the 32 px canvas)


def describe(probs: torch.Tensor) -> list[str]:
    """The oracle's reading of one image (probability vector) as short lines of text."""
    p = probs[None]

    def top(name: str) -> str:
        values = dict(HEADS)[name]
        return values[int(head_probs(p, name).argmax())]

    lines = [f"{top('medium')}, {top('bg_color')} {top('texture')}"
             + ("" if top("style") == "none" else f", {top('style')}")]
    for pos in POSITIONS:
        if top(f"{pos}.present") == "yes":
            subj = top(f"{pos}.subject")
            what = subj if subj != "none" else f"{top(f'{pos}.color')} {top(f'{pos}.cls')}"
            lines.append(f"{pos}: {top(f'{pos}.size')} {what}")
    return lines


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _panel(image: np.ndarray, above: list[str], below: list[str], width: int = 200) -> Image.Image:
    font = _font(11)
    line_h = 13
    h = (len(above) + len(below)) * line_h + CELL + 12
    panel = Image.new("RGB", (width, h), (255, 255, 255))
    d = ImageDraw.Draw(panel)
    for i, line in enumerate(above):
        d.text((4, 2 + i * line_h), line, fill=(0, 0, 0), font=font)
    y = 4 + len(above) * line_h
    big = Image.fromarray(image).resize((CELL, CELL), Image.NEAREST)
    panel.paste(big, ((width - CELL) // 2, y))
    for i, line in enumerate(below):
        d.text((4, y + CELL + 4 + i * line_h), line, fill=(20, 60, 160), font=font)
    return panel


def _grid(panels: list[Image.Image], cols: int) -> Image.Image:
    w = max(p.width for p in panels)
    h = max(p.height for p in panels)
    rows = (len(panels) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * w, rows * h), (255, 255, 255))
    for i, p in enumerate(panels):
        sheet.paste(p, ((i % cols) * w, (i // cols) * h))
    return sheet


def pretrained_grid(world_dir: Path | None, seed: int, n: int = 16, steps: int = 25) -> Image.Image:
    """world-sdxl (CFG 7.5, DDIM) on `n` held-out compositions, read by world-oracle."""
    from diffusers import StableDiffusionXLPipeline

    from .gates import heldout_prompts, oracle_read, sdxl_prompt_accuracy
    from .oracle import load_oracle
    from .presets import world_root

    root = Path(world_dir) if world_dir else world_root()
    pipe = StableDiffusionXLPipeline.from_pretrained(str(root / "world-sdxl"))
    pipe.set_progress_bar_config(disable=True)
    oracle = load_oracle(root / "world-oracle")
    prompts = heldout_prompts(seed, n)
    images = sdxl_prompt_accuracy(pipe, oracle, prompts, steps, seed)["images"]
    probs = oracle_read(oracle, images)
    arrays = ((images.permute(0, 2, 3, 1).numpy() + 1) * 127.5).round().clip(0, 255)
    panels = [_panel(a.astype(np.uint8), textwrap.wrap(p, 32), describe(pr))
              for a, p, pr in zip(arrays, prompts, probs, strict=True)]
    return _grid(panels, 4)


def reference_sheet(folders: list[Path]) -> Image.Image:
    """One row per concept folder: its name, token and reference images."""
    from dcobench.data.concept import load_concept

    font = _font(12)
    rows = []
    for folder in folders:
        c = load_concept(folder)
        ims = [Image.open(p).convert("RGB").resize((96, 96), Image.NEAREST) for p in c.images]
        row = Image.new("RGB", (170 + 100 * len(ims), 100), (255, 255, 255))
        d = ImageDraw.Draw(row)
        d.text((4, 30), c.name, fill=(0, 0, 0), font=font)
        d.text((4, 50), f"{c.token} ({c.class_noun})", fill=(90, 90, 90), font=font)
        for i, im in enumerate(ims):
            row.paste(im, (170 + 100 * i, 2))
        rows.append(row)
    sheet = Image.new("RGB", (max(r.width for r in rows), 100 * len(rows)), (255, 255, 255))
    for i, r in enumerate(rows):
        sheet.paste(r, (0, 100 * i))
    return sheet


def write_figures(out: Path, world_dir: str | None, seed: int = 0) -> list[Path]:
    """pretrained_grid.png, subjects.png, styles.png under out (the concept folders the sheets
    are drawn from are written to a temporary folder: `world concepts` is the command for them)."""
    import tempfile

    from .concepts import write_world_concepts

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="world-concepts-") as tmp:
        folders = write_world_concepts(Path(tmp), seed)
        subjects = [f for f in folders if not f.name.endswith("_style")]
        styles = [f for f in folders if f.name.endswith("_style")]
        sheets = {"subjects.png": reference_sheet(subjects), "styles.png": reference_sheet(styles)}
    paths = {**sheets,
             "pretrained_grid.png": pretrained_grid(Path(world_dir) if world_dir else None, seed)}
    for name, im in paths.items():
        save_png_atomic(im, out / name)
    return [out / n for n in paths]
