"""Peak GPU memory per GPU rule, predicted from shapes (no weights, no GPU, no download).

Each rule's peak = the bytes of the weights it holds (parameter counts of the real architectures
built on the meta device, times the dtype the rule loads them in) + optimiser state where it
trains + the largest activation footprint of one call, measured by running the real modules on
meta tensors under `LiveBytes`: a dispatch-mode ledger of every tensor an operator creates, freed
when its last reference dies (autograd's saved tensors are held through saved-tensor hooks, so
a training forward keeps what backward needs). Attention runs as memory-efficient SDPA (what a
CUDA GPU runs; no (tokens × tokens) matrix). A fixed `CUDA_OVERHEAD` covers the CUDA context,
cuBLAS workspaces and allocator fragmentation.

`predict_peaks(config)` gives rule → bytes for a pipeline config; `docs/gpu.md` tabulates it for
config/paper.yaml and states how it was checked against measured peaks on a CPU.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import weakref
from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

GIB = 2**30
GPU_SIZES_GB = (40, 80)  # the GPUs the docs promise every rule fits (A100 40 GB, A100/H100 80 GB)
CUDA_OVERHEAD = int(1.5 * GIB)  # CUDA context + cuBLAS/cuDNN workspaces + allocator slack
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
SDXL_HUB = "stabilityai/stable-diffusion-xl-base-1.0"


class LiveBytes(TorchDispatchMode):
    """Bytes of the tensors alive while active, and their peak. Views and in-place results are
    not new memory: they keep their base alive instead."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        aliasing = any(r.alias_info is not None for r in func._schema.returns)
        base = next((a for a in tree_flatten((args, kwargs))[0] if isinstance(a, torch.Tensor)),
                    None)
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor):
                continue
            if aliasing:
                weakref.finalize(t, _noop, base)  # the view keeps its base's bytes alive
                continue
            n = t.untyped_storage().nbytes()
            self.live += n
            self.peak = max(self.peak, self.live)
            weakref.finalize(t, self._free, n)
        return out

    def _free(self, n: int) -> None:
        self.live -= n


def _noop(*_) -> None:
    return None


def _efficient_sdpa(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                    enable_gqa=False):
    """Memory-efficient attention (what CUDA runs for SDXL): O(tokens) saved, never tokens²."""
    grad = torch.is_grad_enabled() and any(x.requires_grad for x in (q, k, v))
    return torch.ops.aten._scaled_dot_product_efficient_attention(
        q, k, v, attn_mask, grad, dropout_p, is_causal, scale=scale)[0]


@contextlib.contextmanager
def measuring() -> Iterator[LiveBytes]:
    """A LiveBytes ledger with saved tensors held by autograd and SDPA as on a GPU."""
    import torch.nn.functional as F

    sdpa = F.scaled_dot_product_attention
    F.scaled_dot_product_attention = _efficient_sdpa
    ledger = LiveBytes()
    try:
        with torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t), ledger:
            yield ledger
    finally:
        F.scaled_dot_product_attention = sdpa


def param_bytes(module: torch.nn.Module) -> int:
    """Bytes of a module's parameters and buffers as they are (meta tensors count too)."""
    tensors = list(module.parameters()) + list(module.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


# --- architectures on the meta device --------------------------------------------------------

# The scoring models of config/paper.yaml, as their hub configs give them (parameter counts
# follow from these; sizes of the images the processors produce): facebook/dinov2-base
# (config.json, preprocessor_config.json crop 224), google/siglip-so400m-patch14-384
# (config.json), and open_clip's ViT-B-32 (timm/vit_base_patch32_clip_224.openai, 151.3 M).
DINO_BASE = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, mlp_ratio=4,
                 patch_size=14, image_size=518)
DINO_CROP = 224
SIGLIP_SO400M_VISION = dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27,
                            num_attention_heads=16, patch_size=14, image_size=384)
SIGLIP_SO400M_TEXT = dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27,
                          num_attention_heads=16, vocab_size=32000, max_position_embeddings=64)
CLIP_B32_PARAMS = 151_277_313


def sdxl_configs(spec: str) -> dict[str, dict]:
    """unet / vae / text_encoder / text_encoder_2 configs of an SDXL model spec: read from its
    folder when `spec` is a preset or a local folder, else SDXL base 1.0's (`sdxl_shaped`, the
    same architecture; a hub id is not downloaded to count it)."""
    from dcobench.models import sdxl_shaped
    from dcobench.models.presets import PRESETS, resolve_model

    path = resolve_model(spec) if spec in PRESETS or os.path.isdir(spec) else None
    if path is None or not os.path.isdir(path):
        return {"unet": dict(sdxl_shaped.UNET), "vae": dict(sdxl_shaped.VAE),
                "text_encoder": dict(sdxl_shaped.TEXT_L, vocab_size=49408),
                "text_encoder_2": dict(sdxl_shaped.TEXT_G, vocab_size=49408)}
    return {k: json.loads((Path(path) / k / "config.json").read_text())
            for k in ("unet", "vae", "text_encoder", "text_encoder_2")}


def meta_sdxl(spec: str, dtype: torch.dtype) -> dict[str, torch.nn.Module]:
    """The model's four modules on the meta device, in `dtype`."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    cfg = sdxl_configs(spec)
    text_keys = set(CLIPTextConfig().to_dict())
    with torch.device("meta"):
        mods = {"unet": UNet2DConditionModel.from_config(cfg["unet"]),
                "vae": AutoencoderKL.from_config(cfg["vae"]),
                "text_encoder": CLIPTextModel(CLIPTextConfig(
                    **{k: v for k, v in cfg["text_encoder"].items() if k in text_keys})),
                "text_encoder_2": CLIPTextModelWithProjection(CLIPTextConfig(
                    **{k: v for k, v in cfg["text_encoder_2"].items() if k in text_keys}))}
    for m in mods.values():
        m.requires_grad_(False).to(dtype)
    return mods


def _unet_inputs(unet, rows: int, resolution: int, dtype: torch.dtype, device="meta") -> dict:
    """SDXL UNet call arguments for `rows` rows at square `resolution`."""
    cfg = unet.config
    h = resolution // 8
    pooled = cfg.projection_class_embeddings_input_dim - 6 * cfg.addition_time_embed_dim
    ids = torch.tensor([resolution, resolution, 0, 0, resolution, resolution], device=device)
    return {"sample": torch.zeros(rows, cfg.in_channels, h, h, device=device, dtype=dtype),
            "timestep": torch.full((rows,), 500, device=device),
            "encoder_hidden_states": torch.zeros(rows, 77, cfg.cross_attention_dim, device=device,
                                                 dtype=dtype),
            "added_cond_kwargs": {
                "text_embeds": torch.zeros(rows, pooled, device=device, dtype=dtype),
                "time_ids": ids.to(dtype).expand(rows, 6)}}


def unet_call(unet, rows: int, resolution: int, dtype: torch.dtype, grad: bool,
              reference_rows: int = 0, device="meta") -> None:
    """What one call of a rule does with the UNet: a no-grad forward (sampling), or a training
    forward + (DCO) a no-grad reference forward while the graph is alive + backward."""
    args = _unet_inputs(unet, rows, resolution, dtype, device)
    with torch.set_grad_enabled(grad):
        out = unet(**args).sample
    if reference_rows:
        with torch.no_grad():
            ref = unet(**_unet_inputs(unet, reference_rows, resolution, dtype, device)).sample
        out = out[:reference_rows] - ref
    if grad:
        out.float().pow(2).mean().backward()


def activation_bytes(run) -> int:
    """Peak bytes of the tensors `run()` creates (meta tensors; GPU-style attention)."""
    with measuring() as ledger:
        run()
    return ledger.peak


def with_lora(unet, rank: int, dtype: torch.dtype):
    """Attach a trainable LoRA of `rank` (as training does) in `dtype`; returns the unet."""
    from dcobench.models.adapters import add_lora

    add_lora(unet, rank, None)
    for p in unet.parameters():
        if p.requires_grad:
            p.data = p.data.to(dtype)
    return unet


# --- rules ------------------------------------------------------------------------------------

def _dtype(precision: str) -> torch.dtype:
    """A precision setting on a GPU (auto: bf16, what A100/H100 run)."""
    return torch.bfloat16 if precision == "auto" else DTYPES[precision]


def lora_param_count(unet, rank: int) -> int:
    """Parameters of a LoRA of `rank` on the attention projections (adapters.LORA_TARGETS)."""
    from dcobench.models.adapters import LORA_TARGETS

    return sum(rank * (m.in_features + m.out_features) for n, m in unet.named_modules()
               if isinstance(m, torch.nn.Linear) and n.endswith(LORA_TARGETS))


def _weights(mods: dict, names=("unet", "vae", "text_encoder", "text_encoder_2")) -> int:
    return sum(param_bytes(mods[n]) for n in names)


@functools.lru_cache(maxsize=64)
def unet_activations(spec: str, dtype: torch.dtype, rows: int, resolution: int, grad: bool,
                     reference_rows: int = 0, rank: int = 0) -> int:
    """Activation peak of one UNet call (`unet_call`) with a trainable LoRA of `rank` if grad."""
    unet = meta_sdxl(spec, dtype)["unet"]
    if grad:
        with_lora(unet, rank, dtype)
    return activation_bytes(lambda: unet_call(unet, rows, resolution, dtype, grad, reference_rows))


@functools.lru_cache(maxsize=64)
def vae_activations(spec: str, dtype: torch.dtype, images: int, resolution: int,
                    encode: bool) -> int:
    """Activation peak of one no-grad VAE encode (pixels) or decode (latents) of `images`."""
    vae = meta_sdxl(spec, dtype)["vae"]
    if encode:
        x = torch.zeros(images, 3, resolution, resolution, device="meta", dtype=dtype)
        return activation_bytes(lambda: torch.no_grad()(vae.encode)(x))
    z = torch.zeros(images, vae.config.latent_channels, resolution // 8, resolution // 8,
                    device="meta", dtype=dtype)
    return activation_bytes(lambda: torch.no_grad()(vae.decode)(z))


def _vae_dtype(vae, dtype: torch.dtype) -> torch.dtype:
    """sample.denoise.decode: an fp16 VAE with force_upcast decodes in fp32."""
    return torch.float32 if dtype == torch.float16 and vae.config.get("force_upcast") else dtype


def _sampling(spec: str, dtype, rows: int, batch: int, resolution: int, rank: int) -> dict:
    """Weights (+ a LoRA of `rank`) + the larger of one guided UNet call of `rows` rows and the
    VAE decode of the `batch` images."""
    mods = meta_sdxl(spec, dtype)
    vae_dtype = _vae_dtype(mods["vae"], dtype)
    lora = lora_param_count(mods["unet"], rank) * dtype.itemsize
    upcast = param_bytes(mods["vae"]) if vae_dtype != dtype else 0
    act = max(unet_activations(spec, dtype, rows, resolution, False),
              vae_activations(spec, vae_dtype, batch, resolution, encode=False))
    return {"weights": _weights(mods) + lora + upcast, "optimizer": 0, "activations": act}


def _noise_distance(spec: str, rank: int, batch: int, resolution: int, chunk: int) -> dict:
    """fp32 pipeline + LoRA; the larger of the reference images' VAE encode (`chunk` at a time)
    and one no-grad UNet call of `batch` rows (ε_θ is held, small, while ε_φ runs)."""
    mods = meta_sdxl(spec, torch.float32)
    lora = lora_param_count(mods["unet"], rank) * 4
    act = max(unet_activations(spec, torch.float32, batch, resolution, False),
              vae_activations(spec, torch.float32, chunk, resolution, encode=True))
    return {"weights": _weights(mods) + lora, "optimizer": 0, "activations": act}


def _training(spec: str, dtype, rank: int, rows: int, reference_rows: int, resolution: int,
              learns_token: bool, encode_chunk: int, trains_lora: bool = True) -> dict:
    """Trainer: frozen UNet and text encoders in `dtype` (their embedding matrices fp32), the
    fp32 VAE while the latents are cached (`encode_chunk` images per call), fp32 LoRA (+ its
    gradient and Adam's two moments when it trains), the embedding matrices' gradient when a
    token is learned; the peak of the encode and of one step."""
    mods = meta_sdxl(spec, dtype)
    n_lora = lora_param_count(mods["unet"], rank)
    emb = sum(m.get_input_embeddings().weight.numel()
              for m in (mods["text_encoder"], mods["text_encoder_2"]))
    frozen = (_weights(mods, ("unet", "text_encoder", "text_encoder_2"))
              + emb * (4 - dtype.itemsize))
    state = (3 * 4 * n_lora if trains_lora else 0) + (4 * emb if learns_token else 0)
    vae_fp32 = param_bytes(mods["vae"]) * 4 // dtype.itemsize
    encode = vae_fp32 + vae_activations(spec, torch.float32, encode_chunk, resolution, True)
    step = unet_activations(spec, dtype, rows, resolution, True, reference_rows, rank)
    return {"weights": frozen + 4 * n_lora, "optimizer": state, "activations": max(encode, step)}


def _meta_auto(spec: str):
    """A transformers model of a preset or local folder, on the meta device."""
    from transformers import AutoConfig, AutoModel

    from dcobench.models.presets import resolve_model

    config = AutoConfig.from_pretrained(resolve_model(spec))  # builds a preset: not on meta
    with torch.device("meta"):
        return AutoModel.from_config(config)


def _scoring(models: dict, batch: int) -> dict:
    """Every metric model in fp32 (DINOv2, SigLIP, CLIP) + the larger image-tower forward of one
    batch. Presets and local folders are counted from their configs; hub ids from the hub
    configs above (paper: dinov2-base, siglip-so400m-patch14-384, CLIP B/32)."""
    from transformers import Dinov2Config, Dinov2Model, SiglipConfig, SiglipModel

    from dcobench.models.presets import PRESETS

    def local(spec):
        return spec in PRESETS or os.path.isdir(str(spec))

    if local(models["dino"]):
        dino = _meta_auto(models["dino"])
    else:
        with torch.device("meta"):
            dino = Dinov2Model(Dinov2Config(**DINO_BASE))
    if local(models["siglip"]):
        siglip = _meta_auto(models["siglip"])
    else:
        with torch.device("meta"):
            siglip = SiglipModel(SiglipConfig(text_config=SIGLIP_SO400M_TEXT,
                                              vision_config=SIGLIP_SO400M_VISION))
    dino.requires_grad_(False)
    siglip.requires_grad_(False)
    side = siglip.config.vision_config.image_size
    crop = DINO_CROP if not local(models["dino"]) else dino.config.image_size
    sig_px = torch.zeros(batch, 3, side, side, device="meta")
    dino_px = torch.zeros(batch, 3, crop, crop, device="meta")
    act = max(activation_bytes(lambda: torch.no_grad()(siglip.get_image_features)(sig_px)),
              activation_bytes(lambda: torch.no_grad()(dino)(dino_px)))
    clip = 0 if local(models.get("clip", "")) else 4 * CLIP_B32_PARAMS
    return {"weights": param_bytes(dino) + param_bytes(siglip) + clip, "optimizer": 0,
            "activations": act}


def rule_breakdown(config: dict) -> dict[str, dict]:
    """Per GPU rule of a pipeline config: bytes of weights, optimiser state, activations and
    the fixed CUDA overhead (values are summed by `predict_peaks`)."""
    from dcobench.analysis.noise_distance import NoiseDistanceOptions
    from dcobench.config import section
    from dcobench.spec.merge import ZipLoraOptions
    from dcobench.train.batches import VAE_ENCODE_CHUNK

    base = config["models"]["base"]
    train, sample = section(config, "train"), section(config, "sample")
    res, batch = sample["resolution"], sample["batch_size"]
    ranks = train["rank"] if isinstance(train["rank"], dict) else {"subject": train["rank"]}
    rank = max(ranks.values())
    tdt, sdt = _dtype(train["mixed_precision"]), _dtype(sample["mixed_precision"])
    tres, tb = train["resolution"], train["batch_size"]
    zl = ZipLoraOptions(**(config["merge"].get("ziplora") or {}))  # its defaults where unset
    nd_batch = NoiseDistanceOptions().batch_size
    out = {
        "priors": _sampling(base, sdt, 2 * batch, batch, tres, 0),
        "train": max((_training(base, tdt, rank, tb, tb, tres, True, VAE_ENCODE_CHUNK),  # DCO
                      _training(base, tdt, rank, 2 * tb, 0, tres, True, VAE_ENCODE_CHUNK)),
                     key=_total),  # DB + p.p.: instance and prior rows in one call
        "sample": _sampling(base, sdt, 3 * batch, batch, res, rank),  # RG: 3 rows per image
        "sample_pretrained": _sampling(base, sdt, 2 * batch, batch, res, 0),  # CFG
        "sample_merge": _sampling(base, sdt, 3 * batch, batch, res, sum(ranks.values())),
        "merge": _training(base, tdt, sum(ranks.values()), zl.batch_size, 0,
                           zl.resolution, False, VAE_ENCODE_CHUNK, trains_lora=False),
        "noise_distance_run": _noise_distance(base, rank, nd_batch, tres,
                                              VAE_ENCODE_CHUNK),
    }
    out["sample_group"] = dict(out["sample"])  # one member at a time: the largest, RG with a LoRA
    score = _scoring(config["models"], section(config, "score")["batch_size"])
    out.update(score=score, score_merge=dict(score), score_pretrained=dict(score),
               score_group=dict(score))
    for v in out.values():
        v["overhead"] = CUDA_OVERHEAD
    return out


def _total(parts: dict) -> int:
    return sum(parts.values())


def predict_peaks(config: dict) -> dict[str, int]:
    """Predicted peak GPU bytes per GPU rule of a pipeline config (rule name → bytes)."""
    return {rule: _total(parts) for rule, parts in rule_breakdown(config).items()}


# --- measured beside predicted ----------------------------------------------------------------

def measured_peak(run, device: torch.device) -> int:
    """Peak bytes of the tensors `run()` allocates on `device`: CUDA's allocator statistics, or
    on a CPU the allocation events of torch's profiler (every CPU allocation and free, in order)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        run()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    events = sorted((e.time_range.start, e.self_cpu_memory_usage) for e in prof.events()
                    if e.self_cpu_memory_usage)
    live = peak = 0
    for _, delta in events:
        live += delta
        peak = max(peak, live)
    return peak


def compare_calls(spec: str, device: torch.device, dtype: torch.dtype, resolution: int,
                  rows: int, rank: int = 4) -> list[dict]:
    """Measured (real weights on `device`) beside predicted (meta) activation peaks of the calls
    the rules are made of: a DCO training step, a guided sampling call, a VAE decode and encode."""
    from dcobench.models import load_sdxl

    pipe = load_sdxl(spec, device=str(device), dtype=dtype)
    unet, vae = pipe.unet.requires_grad_(False), pipe.vae.requires_grad_(False)
    calls = {
        "unet_sample": (lambda: unet_call(unet, rows, resolution, dtype, False, device=device),
                        lambda: unet_activations(spec, dtype, rows, resolution, False)),
        "vae_decode": (lambda: _decode(vae, rows, resolution, dtype, device),
                       lambda: vae_activations(spec, dtype, rows, resolution, False)),
        "vae_encode": (lambda: _encode(vae, rows, resolution, dtype, device),
                       lambda: vae_activations(spec, dtype, rows, resolution, True)),
    }
    out = []
    for name, (real, predicted) in calls.items():
        real()  # warm-up: lazy buffers, kernels' first-call allocations
        out.append(_row(name, rows, predicted(), measured_peak(real, device)))
    with_lora(unet, rank, dtype)

    def train_step():
        unet_call(unet, rows, resolution, dtype, True, reference_rows=rows, device=device)
        unet.zero_grad(set_to_none=True)

    train_step()
    out.append(_row("unet_train_dco", rows, unet_activations(spec, dtype, rows, resolution, True,
                                                             rows, rank),
                    measured_peak(train_step, device)))
    return out


def _decode(vae, n, resolution, dtype, device):
    z = torch.zeros(n, vae.config.latent_channels, resolution // 8, resolution // 8,
                    device=device, dtype=dtype)
    with torch.no_grad():
        vae.decode(z)


def _encode(vae, n, resolution, dtype, device):
    x = torch.zeros(n, 3, resolution, resolution, device=device, dtype=dtype)
    with torch.no_grad():
        vae.encode(x)


def _row(name: str, rows: int, predicted: int, measured: int) -> dict:
    return {"call": name, "rows": rows, "predicted_mib": predicted / 2**20,
            "measured_mib": measured / 2**20,
            "predicted_over_measured": predicted / measured if measured else None}


def markdown_table(config: dict) -> str:
    """The predicted peaks of a config as a markdown table (GiB), with the fit on each GPU."""
    head = ["rule", "weights", "optimizer", "activations", "overhead", "peak"]
    head += [f"fits {g} GB" for g in GPU_SIZES_GB]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for rule, parts in rule_breakdown(config).items():
        total = _total(parts)
        cells = [rule] + [f"{parts[k] / GIB:.2f}" for k in head[1:5]] + [f"{total / GIB:.2f}"]
        cells += ["yes" if fits(total, g) else "**no**" for g in GPU_SIZES_GB]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def fits(peak: int, gpu_gb: int) -> bool:
    """Whether `peak` bytes fit a GPU sold as `gpu_gb` GB (an A100 40 GB holds 40 GiB; 2 % of
    it is kept for what the model does not count)."""
    return peak <= 0.98 * gpu_gb * GIB


# --- host memory ------------------------------------------------------------------------------

HOST_BASE = 3 * GIB  # the Python process: torch, diffusers, transformers and CUDA libraries loaded


def predict_host_peaks(config: dict) -> dict[str, int]:
    """Host (CPU) bytes per GPU rule: every job reads its weights into host memory at the dtype
    it loads them in before moving them to the GPU (training loads SDXL in fp32 and lowers it
    on the GPU; the noise distance loads fp32; sampling, priors and ZipLoRA their GPU dtype),
    plus the process itself. What slurm/config.yaml's `mem_mb` must cover."""
    from dcobench.config import section

    base = config["models"]["base"]
    sdt = _dtype(section(config, "sample")["mixed_precision"])
    weights = {dt: _weights(meta_sdxl(base, dt)) for dt in {torch.float32, sdt}}
    score = _scoring_weights(config["models"])
    out = {"priors": weights[sdt], "train": weights[torch.float32], "sample": weights[sdt],
           "sample_pretrained": weights[sdt], "sample_merge": weights[sdt], "merge": weights[sdt],
           "noise_distance_run": weights[torch.float32], "score": score, "score_merge": score,
           "score_pretrained": score, "sample_group": weights[sdt], "score_group": score}
    return {rule: HOST_BASE + w for rule, w in out.items()}


def _scoring_weights(models: dict) -> int:
    """fp32 bytes of the scoring models (as `_scoring` counts them)."""
    return _scoring(models, 1)["weights"]
