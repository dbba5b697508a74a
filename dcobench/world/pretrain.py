"""Training loops of the world's models. Each takes tensors and step counts and returns the
trained module; the builder (`build.py`) orchestrates phases, seeds and saving."""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from tqdm import tqdm

from .oracle import Oracle, oracle_loss


def _batches(n: int, batch: int, steps: int, gen: torch.Generator):
    """`steps` random index batches over n items."""
    for _ in range(steps):
        yield torch.randint(0, n, (batch,), generator=gen)


def _lr(step: int, steps: int, base: float, warmup: int = 100) -> float:
    """Linear warm-up then cosine decay to 10%."""
    if step < warmup:
        return base * (step + 1) / warmup
    p = (step - warmup) / max(steps - warmup, 1)
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))


def _set_lr(opt, lr: float) -> None:
    for g in opt.param_groups:
        g["lr"] = lr


def _fit(params, loss_fn, n: int, steps: int, batch: int, lr: float, gen: torch.Generator,
         desc: str, weight_decay: float = 0.0, warmup: int = 100, clip: float | None = None,
         after_step=None) -> None:
    """The loop every world model shares: AdamW, warm-up + cosine lr, `steps` random batches of
    indices into n items drawn from `gen`; `loss_fn(idx)` gives the batch loss (drawing any
    noise it needs from the same generator, after the batch indices)."""
    params = list(params)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    bar = tqdm(_batches(n, batch, steps, gen), total=steps, desc=desc, mininterval=5.0)
    for step, idx in enumerate(bar):
        _set_lr(opt, _lr(step, steps, lr, warmup))
        loss = loss_fn(idx)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(params, clip)
        opt.step()
        if after_step is not None:
            after_step(step)
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}")


def edge_l1(rec: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean L1 distance between the horizontal and vertical pixel differences of two batches:
    it weighs outlines, which a pixel loss averages away on small objects."""
    def grads(t):
        return t[..., :, 1:] - t[..., :, :-1], t[..., 1:, :] - t[..., :-1, :]

    (rx, ry), (xx, xy) = grads(rec), grads(x)
    return (rx - xx).abs().mean() + (ry - xy).abs().mean()


def reconstruction_loss(rec: torch.Tensor, x: torch.Tensor, edge_weight: float) -> torch.Tensor:
    """The codec's pixel loss: MSE + 0.1 L1 (+ `edge_weight` x `edge_l1`)."""
    out = F.mse_loss(rec, x) + 0.1 * (rec - x).abs().mean()
    return out + edge_weight * edge_l1(rec, x) if edge_weight else out


def train_vae(vae, images: torch.Tensor, steps: int, batch: int, lr: float, seed: int,
              kl_weight: float = 1e-6, edge_weight: float = 0.0):
    """MSE + L1 reconstruction of the posterior sample (+ `edge_weight` x `edge_l1`), small KL;
    images (N, 3, S, S) in [-1, 1]."""
    gen = torch.Generator().manual_seed(seed)

    def loss(idx):
        x = images[idx]
        post = vae.encode(x).latent_dist
        z = post.mean + post.std * torch.randn(post.mean.shape, generator=gen)
        rec = vae.decode(z).sample
        return reconstruction_loss(rec, x, edge_weight) + kl_weight * post.kl().mean()

    vae.train()
    _fit(vae.parameters(), loss, len(images), steps, batch, lr, gen, "world vae")
    return vae.eval()


def train_decoder(vae, images: torch.Tensor, steps: int, batch: int, lr: float, seed: int,
                  edge_weight: float = 1.0):
    """Fine-tune the decoder alone (post_quant_conv + decoder) on posterior samples of frozen
    encodings of `images`: the latent space, and so any UNet trained on it, is unchanged, while
    reconstructions improve. `reconstruction_loss` as in `train_vae`, without the KL (the encoder
    is fixed)."""
    gen = torch.Generator().manual_seed(seed)
    vae.eval()
    with torch.no_grad():
        posts = [vae.encode(images[i:i + 256]).latent_dist for i in range(0, len(images), 256)]
    mean, std = torch.cat([p.mean for p in posts]), torch.cat([p.std for p in posts])
    params = [*vae.post_quant_conv.parameters(), *vae.decoder.parameters()]

    def loss(idx):
        z = mean[idx] + std[idx] * torch.randn(mean[idx].shape, generator=gen)
        rec, x = vae.decode(z).sample, images[idx]
        return reconstruction_loss(rec, x, edge_weight)

    vae.decoder.train()
    _fit(params, loss, len(images), steps, batch, lr, gen, "world decoder")
    return vae.eval()


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur (5x5 kernel, reflect padding) of a batch (B, C, H, W)."""
    r = torch.arange(-2, 3, dtype=x.dtype)
    k = torch.exp(-r.square() / (2 * max(sigma, 1e-3) ** 2))
    k = k / k.sum()
    kernel = (k[:, None] * k[None, :]).expand(x.shape[1], 1, 5, 5)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), kernel, groups=x.shape[1])


def train_oracle(images: torch.Tensor, target: torch.Tensor, steps: int, batch: int, lr: float,
                 seed: int, max_blur: float = 0.0, width: int = 16, hidden: int = 128) -> Oracle:
    """Cross-entropy on every head; light pixel noise, and with max_blur > 0 a Gaussian blur of
    random width (0..max_blur px, one width a batch) on half the batches, so that images that
    went through the VAE's decoder (which softens edges) read as renders do."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = Oracle(width=width, hidden=hidden)

    def loss(idx):
        sigma = torch.rand(len(idx), 1, 1, 1, generator=gen) * 0.1
        x = images[idx] + sigma * torch.randn(images[idx].shape, generator=gen)
        if max_blur:
            width = float(torch.rand((), generator=gen)) * max_blur * 2
            if width > max_blur:  # half the batches stay sharp
                x = blur(x, width - max_blur)
        return oracle_loss(model(x), target[idx])

    _fit(model.parameters(), loss, len(images), steps, batch, lr, gen, "world oracle",
         weight_decay=1e-4)
    return model.eval()


def _encode_ids(te1, te2, ids1: torch.Tensor, ids2: torch.Tensor):
    """Same as dcobench.models.text.encode_prompts, from token ids: (B, 77, d1+d2), (B, d_proj)."""
    out1 = te1(ids1, output_hidden_states=True)
    out2 = te2(ids2, output_hidden_states=True)
    return torch.cat([out1.hidden_states[-2], out2.hidden_states[-2]], -1), out2[0]


def train_sdxl(unet, te1, te2, latents: torch.Tensor, ids1: torch.Tensor, ids2: torch.Tensor,
               steps: int, batch: int, lr: float, seed: int, size: int, drop: float = 0.1,
               ema_decay: float = 0.999):
    """Epsilon-prediction training of UNet + both text encoders; returns (EMA UNet, te1, te2).

    Dropped captions (prob `drop`) get all-zero embeddings, which is what the SDXL pipeline
    feeds as the unconditional branch (force_zeros_for_empty_prompt)."""
    from diffusers import DDPMScheduler

    noise_sched = DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                                beta_schedule="scaled_linear")
    gen = torch.Generator().manual_seed(seed)
    ema = copy.deepcopy(unet).eval().requires_grad_(False)
    time_ids = torch.tensor([size, size, 0, 0, size, size], dtype=torch.float32)

    def loss(idx):
        x0 = latents[idx]
        noise = torch.randn(x0.shape, generator=gen)
        t = torch.randint(0, 1000, (len(idx),), generator=gen)
        xt = noise_sched.add_noise(x0, noise, t)
        embeds, pooled = _encode_ids(te1, te2, ids1[idx], ids2[idx])
        keep = (torch.rand(len(idx), generator=gen) >= drop).float()
        embeds, pooled = embeds * keep[:, None, None], pooled * keep[:, None]
        added = {"text_embeds": pooled, "time_ids": time_ids.expand(len(idx), 6)}
        pred = unet(xt, t, encoder_hidden_states=embeds, added_cond_kwargs=added).sample
        return F.mse_loss(pred, noise)

    @torch.no_grad()
    def update_ema(step):
        decay = min(ema_decay, (1 + step) / (10 + step))
        for pe, p in zip(ema.parameters(), unet.parameters(), strict=True):
            pe.lerp_(p, 1 - decay)

    unet.train(), te1.train(), te2.train()
    params = list(unet.parameters()) + list(te1.parameters()) + list(te2.parameters())
    _fit(params, loss, len(latents), steps, batch, lr, gen, "world unet+text", warmup=200,
         clip=1.0, after_step=update_ema)
    return ema, te1.eval(), te2.eval()


def train_siglip(model, images: torch.Tensor, ids: torch.Tensor, steps: int, batch: int,
                 lr: float, seed: int):
    """SigLIP's own sigmoid loss (``return_loss=True``) on image-caption pairs.

    The logit bias starts at -log(batch) instead of SigLIP's -10 (set for 32k batches): with
    64 pairs a batch, -10 makes every logit near zero probability and learning crawls."""
    torch.manual_seed(seed)
    with torch.no_grad():
        model.logit_bias.fill_(-math.log(batch))
    gen = torch.Generator().manual_seed(seed)

    def loss(idx):
        return model(input_ids=ids[idx], pixel_values=images[idx], return_loss=True).loss

    model.train()
    _fit(model.parameters(), loss, len(images), steps, batch, lr, gen, "world siglip",
         weight_decay=1e-4)
    return model.eval()


def train_dino(model, images: torch.Tensor, target: torch.Tensor, steps: int, batch: int,
               lr: float, seed: int):
    """Supervised on every oracle attribute through a linear probe on the CLS token (the probe
    is discarded), plus a supervised contrastive term that pulls renders of the same subject
    together (instance retrieval); images already ImageNet-normalised."""
    from .oracle import WIDTHS

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    probe = torch.nn.Linear(model.config.hidden_size, sum(WIDTHS))

    def loss(idx):
        cls = model(pixel_values=images[idx]).last_hidden_state[:, 0]
        return oracle_loss(probe(cls), target[idx]) + subject_contrast(cls, target[idx])

    model.train()
    _fit(list(model.parameters()) + list(probe.parameters()), loss, len(images), steps, batch,
         lr, gen, "world dinov2", weight_decay=1e-4)
    return model.eval()


def subject_contrast(emb: torch.Tensor, target: torch.Tensor, temperature: float = 0.1):
    """Supervised contrastive loss over images showing a subject (label: the first subject
    found left to right); 0 when no image of the batch has a positive partner."""
    from .oracle import HEAD_INDEX
    from .vocab import POSITIONS

    cols = target[:, [HEAD_INDEX[f"{p}.subject"] for p in POSITIONS]]  # (B, slots)
    cols = torch.where(cols > 0, cols, torch.full_like(cols, 10**6))
    label = cols.min(-1).values  # (B,) first subject id, 10**6 = none
    keep = label < 10**6
    z = F.normalize(emb[keep], dim=-1)
    lab = label[keep]
    if len(lab) < 2:
        return emb.sum() * 0
    sim = z @ z.T / temperature
    eye = torch.eye(len(lab), dtype=torch.bool)
    logp = sim.masked_fill(eye, -1e9).log_softmax(-1)
    pos = (lab[:, None] == lab[None, :]) & ~eye
    has = pos.any(-1)
    if not has.any():
        return emb.sum() * 0
    return -(logp * pos).sum(-1)[has].div(pos.sum(-1)[has]).mean()
