"""`python -m dcobench world build`: pretrain the world's models, phase by phase, from a seed.

Phases (each finished phase leaves a folder in --work with ``done.json``; a rerun skips it, so
an interrupted build resumes at the phase it was in): vae -> decoder -> oracle -> sdxl ->
siglip -> dino -> gates. The final presets are written as fp16 safetensors to --out (world-sdxl,
world-siglip, world-dinov2, world-oracle) with gates.json and manifest.json (build command,
git hash, sha256 per file, gate figures).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from dcobench.io import git_hash, staging_dir, versions, write_text_atomic

PHASES = ("vae", "decoder", "oracle", "sdxl", "siglip", "dino", "gates")
PRESET_DIRS = {"sdxl": "world-sdxl", "oracle": "world-oracle", "siglip": "world-siglip",
               "dino": "world-dinov2"}


@dataclass(frozen=True)
class BuildOptions:
    """Sizes and step counts of a build (defaults: the committed build).

    seed: world seed (scenes, inits, batches); n_train: pretraining renders; *_steps/*_batch:
    optimisation per phase; n_gate_prompts: held-out prompts for the world-sdxl gate;
    gate_steps: sampling steps for it (DDIM, CFG 7.5); patterned: fraction of the ordinary
    objects of the pretraining and oracle renders drawn with a two-colour pattern (see
    `scenes`), so that a class's prior holds patterned instances as well as plain ones;
    oracle_width: channels of the oracle's first convolution (hidden layer: 8x that);
    latent_channels: channels of the VAE's 8x8 latent (and of the UNet's input and output);
    decoder_steps: steps of the decoder phase, which fine-tunes the VAE's decoder alone on the
    oracle split (0: the VAE as the vae phase left it)."""

    seed: int = 0
    n_train: int = 24000
    n_oracle: int = 24000
    vae_steps: int = 4500
    vae_batch: int = 16
    oracle_steps: int = 6000
    oracle_batch: int = 64
    oracle_width: int = 32
    sdxl_steps: int = 5000
    sdxl_batch: int = 32
    siglip_steps: int = 5000
    siglip_batch: int = 64
    dino_steps: int = 1500
    dino_batch: int = 64
    n_gate_prompts: int = 200
    gate_steps: int = 25
    patterned: float = 0.25
    latent_channels: int = 4
    decoder_steps: int = 6000

    def __post_init__(self) -> None:
        for k, v in asdict(self).items():
            if k == "patterned":
                if not isinstance(v, int | float) or not 0 <= v < 1:
                    raise ValueError(f"world build option patterned must be in [0, 1), got {v!r}")
            elif not isinstance(v, int) or v < (low := 0 if k in ("seed", "decoder_steps") else 1):
                kind = "a non-negative" if low == 0 else "a positive"
                raise ValueError(f"world build option {k} must be {kind} integer, got {v!r}")


def _done(folder: Path) -> bool:
    return (folder / "done.json").is_file()


def _finish(stage: Path, info: dict) -> None:
    write_text_atomic(stage / "done.json", json.dumps(info, indent=1, default=str) + "\n")


class Builder:
    """Runs the phases; `work` holds phase outputs, `out` the final presets."""

    def __init__(self, opts: BuildOptions, work: Path, out: Path) -> None:
        self.opts, self.work, self.out = opts, Path(work), Path(out)
        self._train = self._oracle = None

    def train_data(self):
        """Pretraining renders + captions (cached for the build's process)."""
        from .data import dataset

        if self._train is None:
            self._train = dataset(self.opts.seed, "pretrain", self.opts.n_train,
                                  desc="render pretrain", patterned=self.opts.patterned)
        return self._train

    def oracle_data(self):
        """Renders of the oracle split (everything, personal subjects and styles included)."""
        from .data import dataset

        if self._oracle is None:
            self._oracle = dataset(self.opts.seed, "oracle", self.opts.n_oracle,
                                   desc="render oracle", patterned=self.opts.patterned)
        return self._oracle

    def run(self, phases: list[str]) -> dict:
        for name in PHASES:
            if name in phases:
                folder = self.work / name
                if _done(folder):
                    print(f"world build: phase {name} already done ({folder})", flush=True)
                    continue
                start = time.time()
                with staging_dir(folder) as stage:
                    info = getattr(self, f"phase_{name}")(stage)
                    _finish(stage, {**(info or {}), "seconds": round(time.time() - start, 1),
                                    "options": asdict(self.opts)})
                print(f"world build: phase {name} done in {time.time() - start:.0f}s", flush=True)
        return self.export() if all(_done(self.work / p) for p in PHASES) else {}

    def phase_vae(self, stage: Path) -> dict:
        """The VAE plays SDXL's general-purpose autoencoder: it learns pretraining renders and
        the oracle split together, so it can reproduce the personal subjects' patterns and the
        personal styles that the UNet never sees in pretraining (trained on pretraining renders
        alone it blurred them: the oracle found the subject on 0.28 of reconstructions of the
        subjects' own references)."""
        from .models import build_vae
        from .pretrain import train_vae

        o = self.opts
        torch.manual_seed(o.seed)
        vae = build_vae(o.latent_channels)
        images = self.train_data()[0]
        train_vae(vae, torch.cat([images, self.oracle_data()[0]]), o.vae_steps, o.vae_batch,
                  1e-3, o.seed, edge_weight=1.0)
        with torch.no_grad():  # scale latents to unit variance, as SDXL's scaling_factor does
            z = torch.cat([vae.encode(images[i:i + 256]).latent_dist.mean
                           for i in range(0, min(len(images), 2048), 256)])
        vae.register_to_config(scaling_factor=float(1.0 / z.std()))
        vae.save_pretrained(str(stage / "vae"), safe_serialization=True)
        return {"scaling_factor": vae.config.scaling_factor}

    def phase_decoder(self, stage: Path) -> dict:
        """The VAE's decoder alone, fine-tuned on the oracle split (where the personal subjects
        are) with the encoder frozen: the latents the UNet learns are those of the vae phase,
        while decoding keeps more of the subjects' patterns (the committed build: the strict oracle
        found the subject on 0.76 of reconstructions of the references after the vae phase,
        0.998 after 6,000 decoder steps; docs/world_validity.md, sixth check)."""
        from diffusers import AutoencoderKL

        from .pretrain import train_decoder

        o = self.opts
        vae = AutoencoderKL.from_pretrained(str(self.work / "vae" / "vae"))
        if o.decoder_steps:
            train_decoder(vae, self.oracle_data()[0], o.decoder_steps, o.vae_batch, 3e-4, o.seed)
        vae.save_pretrained(str(stage / "vae"), safe_serialization=True)
        return {}

    def phase_oracle(self, stage: Path) -> dict:
        from .oracle import save_oracle
        from .pretrain import train_oracle

        o = self.opts
        images, _, target, _ = self.oracle_data()
        model = train_oracle(images, target, o.oracle_steps, o.oracle_batch, 2e-3, o.seed,
                             max_blur=1.0, width=o.oracle_width, hidden=8 * o.oracle_width)
        save_oracle(model, stage / PRESET_DIRS["oracle"])
        return {}

    def phase_sdxl(self, stage: Path) -> dict:
        from diffusers import AutoencoderKL

        from .data import incomplete_captions
        from .models import assemble_sdxl, build_text_encoders, build_unet, tokenizers
        from .pretrain import train_sdxl
        from .render import SIZE

        o = self.opts
        vae = AutoencoderKL.from_pretrained(str(self.work / "decoder" / "vae")).eval()
        images, _, _, scenes = self.train_data()
        captions = incomplete_captions(scenes, o.seed)
        with torch.no_grad():
            latents = torch.cat([vae.encode(images[i:i + 256]).latent_dist.mean
                                 for i in range(0, len(images), 256)]) * vae.config.scaling_factor
        tok1, tok2 = tokenizers()
        enc = dict(padding="max_length", max_length=77, truncation=True, return_tensors="pt")
        ids1, ids2 = tok1(captions, **enc).input_ids, tok2(captions, **enc).input_ids
        torch.manual_seed(o.seed + 1)
        te1, te2 = build_text_encoders(tok1, tok2)
        unet = build_unet(vae.config.latent_channels)
        unet, te1, te2 = train_sdxl(unet, te1, te2, latents, ids1, ids2, o.sdxl_steps,
                                    o.sdxl_batch, 1e-3, o.seed, SIZE)
        pipe = assemble_sdxl(vae, te1, te2, tok1, tok2, unet)
        pipe.save_pretrained(str(stage / PRESET_DIRS["sdxl"]), safe_serialization=True)
        return {}

    def phase_siglip(self, stage: Path) -> dict:
        from .models import build_siglip
        from .pretrain import train_siglip

        o = self.opts
        torch.manual_seed(o.seed + 2)
        model, proc = build_siglip()
        images, captions, _, _ = self.train_data()
        ids = proc.tokenizer(captions, padding="max_length", max_length=64, truncation=True,
                             return_tensors="pt").input_ids
        train_siglip(model, images, ids, o.siglip_steps, o.siglip_batch, 1e-3, o.seed)
        model.save_pretrained(str(stage / PRESET_DIRS["siglip"]), safe_serialization=True)
        proc.save_pretrained(str(stage / PRESET_DIRS["siglip"]))
        return {}

    def phase_dino(self, stage: Path) -> dict:
        from .models import build_dinov2, imagenet_normalize
        from .pretrain import train_dino

        o = self.opts
        images, _, target, _ = self.oracle_data()
        torch.manual_seed(o.seed + 3)
        model, proc = build_dinov2()
        train_dino(model, imagenet_normalize(images), target, o.dino_steps, o.dino_batch,
                   1e-3, o.seed)
        model.save_pretrained(str(stage / PRESET_DIRS["dino"]), safe_serialization=True)
        proc.save_pretrained(str(stage / PRESET_DIRS["dino"]))
        return {}

    def phase_gates(self, stage: Path) -> dict:
        from .gates import measure_gates

        dirs = {k: self.work / k / v for k, v in PRESET_DIRS.items()}
        dirs["vae"] = self.work / "decoder" / "vae"
        gates = measure_gates(dirs, self.opts)
        write_text_atomic(stage / "gates.json", json.dumps(gates, indent=1) + "\n")
        return {"passed": gates["passed"]}

    def export(self) -> dict:
        """fp16 copies of the presets + gates.json + manifest.json into --out."""
        self.out.mkdir(parents=True, exist_ok=True)
        for phase, name in PRESET_DIRS.items():
            _export_fp16(self.work / phase / name, self.out / name)
        for path in self.out.rglob("tokenizer.json"):
            compact_json(path)
        shutil.copy(self.work / "gates" / "gates.json", self.out / "gates.json")
        gates = json.loads((self.out / "gates.json").read_text())
        files = {p.relative_to(self.out).as_posix(): _sha256(p)
                 for p in sorted(self.out.rglob("*")) if p.is_file() and p.name != "manifest.json"}
        seconds = {p: json.loads((self.work / p / "done.json").read_text())["seconds"]
                   for p in PHASES}
        changed = {k: v for k, v in asdict(self.opts).items()
                   if v != BuildOptions.__dataclass_fields__[k].default}
        command = "python -m dcobench world build" + (
            f" --options '{json.dumps(changed)}'" if changed else "")
        manifest = {"stage": "world build", "command": command, "options": asdict(self.opts),
                    "git": git_hash(), "versions": versions(), "phase_seconds": seconds, "gates": gates, "sha256": files}
        write_text_atomic(self.out / "manifest.json", json.dumps(manifest, indent=1) + "\n")
        return manifest


def compact_json(path: Path) -> None:
    """Rewrite a JSON file without indentation: the full CLIP BPE's tokenizer.json shrinks from
    3.6 MB (pretty-printed by save_pretrained) to about a third, same content."""
    data = json.loads(path.read_text(encoding="utf-8"))
    write_text_atomic(path, json.dumps(data, ensure_ascii=False, separators=(",", ":")))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _export_fp16(src: Path, dst: Path) -> None:
    """Copy a model folder, rewriting every safetensors file in fp16 (configs unchanged)."""
    from safetensors.torch import load_file, save_file

    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    for f in tmp.rglob("*.safetensors"):
        tensors = {k: (v.half() if v.is_floating_point() else v).contiguous()
                   for k, v in load_file(str(f)).items()}
        save_file(tensors, str(f), metadata={"format": "pt"})
    shutil.rmtree(dst, ignore_errors=True)
    tmp.rename(dst)
