"""Batched image/text embedders (DINOv2, SigLIP, open_clip) with a persistent content cache.

Pooling and preprocessing (each model's own processor, as saved with its checkpoint):

- ``dino``: DINOv2 CLS token, ``last_hidden_state[:, 0]`` (HF ``Dinov2Model`` applies its final
  layernorm before this, so it equals ``pooler_output``). Real facebook/dinov2-*: the
  AutoImageProcessor (BitImageProcessor) resizes the short side to 256 (bicubic), center-crops
  224 and normalises with ImageNet mean/std; the tiny preset keeps the same 8:7 ratio (73 → 64).
- ``siglip``: ``get_image_features`` / ``get_text_features`` (the attention-pooling head and
  the text tower's pooled output). The SiglipImageProcessor resizes to the checkpoint's square
  size (224 or 384, bicubic, no crop) and normalises with mean 0.5 / std 0.5; texts are padded
  to ``max_length`` (64 tokens), as SigLIP was trained.
- ``clip``: open_clip ``encode_image`` / ``encode_text`` with the checkpoint's own preprocess
  (resize short side, center-crop, OpenAI mean/std) and tokenizer.

Embeddings are cached on disk by (content sha256, model id) under
``{cache_dir}/{model_slug}/{image|text}/{hash[:2]}/{hash}.safetensors``. The model id names
the kind, the spec (preset name, local folder or hub id) and, for a local folder, a fingerprint
of its json configs and weight-file sizes, so a different checkpoint never hits. Each entry is
written to a unique temp file and renamed into place: two jobs writing the same key both
write the same tensor and readers never see a partial file. The model itself is loaded only
when some input is not cached.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm import tqdm

from dcobench.score.metrics import PLUGIN_EMBEDDERS

KINDS = ("dino", "siglip", "clip")  # and the plug-ins' (PLUGIN_EMBEDDERS)
POOLING_VERSION = {"dino": "cls-v1", "siglip": "features-v1", "clip": "encode-v1"}


def plugin_embedder(kind: str):
    """The module implementing a plug-in's embedder `kind` (score.metrics.PLUGIN_EMBEDDERS)."""
    import importlib

    return importlib.import_module(PLUGIN_EMBEDDERS[kind])


def pooling_version(kind: str) -> str:
    """The pooling tag in a model id (bumped when an embedder's output changes)."""
    if kind in POOLING_VERSION:
        return POOLING_VERSION[kind]
    if kind in PLUGIN_EMBEDDERS:
        return plugin_embedder(kind).POOLING_VERSION
    known = [*KINDS, *PLUGIN_EMBEDDERS]
    raise ValueError(f"unknown embedder {kind!r}; known: {', '.join(known)}")


def file_hash(path: Path) -> str:
    """sha256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def model_id(kind: str, spec: str) -> str:
    """`kind:spec:pooling[:fingerprint]`; a local folder (built preset too) adds its fingerprint."""
    from dcobench.models import resolve_model

    ident = f"{kind}:{spec}:{pooling_version(kind)}"
    path = resolve_model(spec)
    if os.path.isdir(path):
        ident += f":{_folder_fingerprint(Path(path))}"
    return ident


def _folder_fingerprint(folder: Path) -> str:
    """Hash of every json config's bytes plus each weight file's name and size (cheap)."""
    digest = hashlib.sha256()
    for f in sorted(folder.rglob("*")):
        if f.suffix == ".json":
            digest.update(f.relative_to(folder).as_posix().encode() + f.read_bytes())
        elif f.suffix in (".safetensors", ".bin", ".pt", ".pth"):
            digest.update(f"{f.relative_to(folder).as_posix()}:{f.stat().st_size}".encode())
    return digest.hexdigest()[:12]


def model_slug(ident: str) -> str:
    """A folder name for a model id: readable part + hash of the full id (never collides)."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", ident)[:60]
    return f"{readable}-{hashlib.sha256(ident.encode()).hexdigest()[:10]}"


class EmbeddingCache:
    """One safetensors file per (model, content hash); race-safe writes."""

    def __init__(self, root: Path, ident: str) -> None:
        self.root, self.ident = Path(root) / model_slug(ident), ident

    def path(self, space: str, key: str) -> Path:
        return self.root / space / key[:2] / f"{key}.safetensors"

    def get(self, space: str, key: str) -> torch.Tensor | None:
        from safetensors import SafetensorError, safe_open

        path = self.path(space, key)
        if not path.is_file():
            return None
        try:
            with safe_open(str(path), "pt") as f:
                if (f.metadata() or {}).get("model_id") != self.ident:
                    return None
                return f.get_tensor("embedding")
        except (SafetensorError, OSError, ValueError):
            return None  # a damaged entry is recomputed and overwritten

    def put(self, space: str, key: str, value: torch.Tensor) -> None:
        from safetensors.torch import save_file

        path = self.path(space, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key[:8]}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            save_file({"embedding": value.detach().float().cpu().contiguous()}, tmp,
                      metadata={"model_id": self.ident, "key": key})
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def get_json(self, name: str) -> dict | None:
        path = self.root / name
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return data if data.get("model_id") == self.ident else None

    def put_json(self, name: str, data: dict) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=self.root)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps({**data, "model_id": self.ident}) + "\n")
        os.replace(tmp, self.root / name)


class Embedder:
    """Image/text embeddings of one model; batched, on `device`, cached by content.

    `forward_calls` counts model forward batches (0 when everything came from the cache).
    """

    def __init__(self, kind: str, spec: str, device: torch.device | str = "cpu",
                 batch_size: int = 16, cache_dir: Path | None = None) -> None:
        self.kind, self.spec, self.batch_size = kind, spec, batch_size
        self.device = torch.device(device)
        self.model_id = model_id(kind, spec)
        self.cache = EmbeddingCache(cache_dir, self.model_id) if cache_dir else None
        self.forward_calls = 0
        self._memory: dict[tuple[str, str], torch.Tensor] = {}
        self._loaded: tuple | None = None

    def _load(self) -> tuple:
        """(model, processor-or-preprocess, tokenizer-or-None), loaded on first use."""
        if self._loaded is None:
            from dcobench import models

            if self.kind == "dino":
                model, proc = models.load_dino(self.spec)
                self._loaded = (model, proc, None)
            elif self.kind == "siglip":
                model, proc = models.load_siglip(self.spec)
                self._loaded = (model, proc, None)
            elif self.kind in PLUGIN_EMBEDDERS:
                self._loaded = (plugin_embedder(self.kind).load(self.spec), None, None)
            else:
                self._loaded = models.load_open_clip(self.spec)
            self._loaded[0].to(self.device).eval()
        return self._loaded

    def images(self, paths: list[Path]) -> torch.Tensor:
        """(N, D) float32 image embeddings of the files, in order."""
        keys = [file_hash(p) for p in paths]
        return self._embed("image", keys, dict(zip(keys, paths, strict=True)), self._embed_images)

    def texts(self, prompts: list[str]) -> torch.Tensor:
        """(N, D) float32 text embeddings (siglip, clip)."""
        if self.kind == "dino":
            raise ValueError("dino has no text tower")
        keys = [text_hash(t) for t in prompts]
        return self._embed("text", keys, dict(zip(keys, prompts, strict=True)), self._embed_texts)

    def _embed(self, space: str, keys: list[str], items: dict, forward: Callable) -> torch.Tensor:
        for key in items:
            if (space, key) not in self._memory and self.cache is not None:
                hit = self.cache.get(space, key)
                if hit is not None:
                    self._memory[(space, key)] = hit
        todo = [k for k in items if (space, k) not in self._memory]
        starts = range(0, len(todo), self.batch_size)
        for start in tqdm(starts, desc=f"embed {self.kind} {space}s", unit="batch",
                          disable=not todo, mininterval=2.0):
            chunk = todo[start : start + self.batch_size]
            with torch.no_grad():
                out = forward([items[k] for k in chunk]).float().cpu()
            self.forward_calls += 1
            for key, emb in zip(chunk, out, strict=True):
                self._memory[(space, key)] = emb
                if self.cache is not None:
                    self.cache.put(space, key, emb)
        return torch.stack([self._memory[(space, k)] for k in keys])

    def _embed_images(self, paths: list[Path]) -> torch.Tensor:
        from dcobench.data.images import read_rgb

        model, proc, _ = self._load()
        pil = [read_rgb(p) for p in paths]  # as training sees them; ImageError names the file
        if self.kind == "clip":
            pixels = torch.stack([proc(im) for im in pil]).to(self.device)
            return model.encode_image(pixels)
        if self.kind in PLUGIN_EMBEDDERS:
            return plugin_embedder(self.kind).embed_images(model, pil)
        pixels = proc(images=pil, return_tensors="pt")["pixel_values"].to(self.device)
        if self.kind == "dino":
            return model(pixel_values=pixels).last_hidden_state[:, 0]  # CLS token
        return _features(model.get_image_features(pixel_values=pixels))

    def _embed_texts(self, prompts: list[str]) -> torch.Tensor:
        if self.kind in PLUGIN_EMBEDDERS:  # the world's oracle: no model for texts
            return plugin_embedder(self.kind).embed_texts(prompts)
        model, proc, tokenizer = self._load()
        if self.kind == "clip":
            return model.encode_text(tokenizer(prompts).to(self.device))
        tok = proc(text=prompts, padding="max_length", truncation=True, return_tensors="pt")
        return _features(model.get_text_features(input_ids=tok["input_ids"].to(self.device)))

    def logit_scale_bias(self) -> tuple[float, float]:
        """SigLIP's exp(logit_scale) and logit_bias (cached next to the embeddings)."""
        if self.kind != "siglip":
            raise ValueError(f"{self.kind} has no logit bias (only siglip)")
        saved = self.cache.get_json("logit.json") if self.cache is not None else None
        if saved is None:
            model = self._load()[0]
            saved = {"scale": model.logit_scale.exp().item(), "bias": model.logit_bias.item()}
            if self.cache is not None:
                self.cache.put_json("logit.json", saved)
        return float(saved["scale"]), float(saved["bias"])


def _features(out) -> torch.Tensor:
    """transformers 5 may return a model output instead of a tensor."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output
