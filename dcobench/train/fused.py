"""Fused training: one process, one UNet call per step for the rows of K trainings.

Each member is one (concept, variant) run with its own TrainOptions. A step draws every active
member's rows from the member's own generator, exactly as its separate run would, lays them out
member by member and routes each member's rows to its own LoRA (`routed_lora`) and learned-token
row; the DCO reference rows (ε_φ, no adapter) run first in one no-grad call, where members whose
rows are identical (same images, x_t, t and base caption: e.g. DCO at two βs with one seed)
share them. One backward of Σ_k loss_k gives each member its own gradient (rows are independent
and the routes disjoint); each member then clips by its own norm and steps its own AdamW and
LR schedule, all members in one clip-and-step over flat buffers (`multi_adamw`, the same
arithmetic as torch's AdamW). A member with a non-finite loss stops (`failed`); the others go on.

Differences from separate runs are floating-point reassociation only: the frozen matmuls and
convolutions run on a larger batch, the members' LoRA deltas in batched matmuls, and the DCO
reference rows of several members share a call.
"""

from __future__ import annotations

import contextlib
import warnings

import torch

from dcobench.data.concept import validate_concept
from dcobench.io import derive_seed, device
from dcobench.models import adapters, text
from dcobench.models.finetuned import autocast_dtype, unet_eps
from dcobench.spec.options import check_shared
from dcobench.train import losses
from dcobench.train.batches import prior_batch, reference_batch, trains_token
from dcobench.train.multi_adamw import MultiAdamW
from dcobench.train.objectives import OBJECTIVES
from dcobench.train.options import TrainOptions
from dcobench.train.routed_lora import (
    Router,
    member_parameters,
    member_state_dict,
    route_peft_layers,
)
from dcobench.train.trainer import StepMath, _training_scheduler, logged_clip

# options every member of a group must share (one pipeline, one UNet call per step)
SHARED = ("concept_dir", "base_model", "resolution", "mixed_precision", "gradient_checkpointing")


class Member(StepMath):
    """One training of a fused group: its options, draws, optimizer, schedule and token rows."""

    def __init__(self, index: int, opts: TrainOptions, group: FusedTrainer) -> None:
        self.index, self.opts, self.group = index, opts, group
        self.objective = OBJECTIVES[opts.objective]
        self.noise_scheduler, self.T = group.noise_scheduler, group.T
        self.generator = torch.Generator().manual_seed(derive_seed(opts.seed, "train"))
        self.tokens: text.LearnedTokens | None = None  # set by TokenRows when it learns one
        self.trains_token = trains_token(opts)  # False at ti_lr 0: its row keeps its init
        self.step_count, self.failed = 0, None  # failed: the error message once stopped

    @property
    def active(self) -> bool:
        return self.failed is None and self.step_count < self.opts.steps

    # the attributes `trainer._finish` reads
    @property
    def concept(self):
        return self.group.concept

    @property
    def amp(self):
        return self.group.amp

    def build(self) -> None:
        """Data, optimizer and schedule, once the group's LoRAs and tokens exist."""
        group, opts = self.group, self.opts
        self.data = group.cached(("ref", opts.captions, opts.learns_token, self.trains_token,
                                  opts.random_flip),
                                 lambda: reference_batch(group.pipe, group.concept, opts))
        self.prior = (group.cached(("prior", str(opts.prior_dir)),
                                   lambda: prior_batch(group.pipe, opts.prior_dir, opts))
                      if opts.prior_dir else None)
        self.lora = member_parameters(group.layers, self.index)
        groups = [{"params": self.lora, "lr": opts.lr, "weight_decay": opts.weight_decay}]
        self.token_rows: list[torch.nn.Parameter] = []
        if self.trains_token:
            self.token_rows = self.tokens.rows(group.pipe)
            groups.append({"params": self.token_rows, "lr": opts.ti_lr, "weight_decay": 0.0})
        self.optimizer = torch.optim.AdamW(groups, weight_decay=0.0)
        warm = opts.lr_warmup_steps
        self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: min(1.0, (s + 1) / warm) if warm else 1.0)

    def draw(self) -> dict:
        """This step's rows, drawn in the separate run's order (data, then class priors)."""
        idx, latents = self._draw(self.data)
        x_t, t, target = self._noisy(latents)
        rows = {"idx": idx, "n": x_t.shape[0], "x_t": x_t, "t": t, "target": target}
        if self.prior is not None:
            pidx, platents = self._draw(self.prior)
            px_t, pt, ptarget = self._noisy(platents)
            rows.update(pidx=pidx, x_t=torch.cat([x_t, px_t]), t=torch.cat([t, pt]),
                        target=torch.cat([target, ptarget]))
        return rows

    def set_token_grads(self, grads: list[tuple[torch.Tensor, torch.Tensor]]) -> list[torch.Tensor]:
        """`grads`: per encoder, (gradient rows of the matrix entries its prompts used, learned
        row). Sets the learned rows' gradients; returns the matrix gradients, which count in
        this member's clipping norm (LoRA + embedding matrices, as the separate trainer counts)."""
        for row, (_, learned) in zip(self.token_rows, grads, strict=True):
            row.grad = learned
        return [g for g, _ in grads]

    def after_step(self) -> None:
        """This member's schedule, and its token rows written back (renormalised)."""
        self.lr_scheduler.step()
        if self.trains_token:
            self.tokens.write(self.group.pipe, self.token_rows)

    @property
    def lora_config(self):
        return self.group.lora_configs[self.index]

    def save(self, out_dir) -> None:
        """LoRA (diffusers format, the separate trainer's keys and metadata) + learned token."""
        out_dir.mkdir(parents=True, exist_ok=True)
        adapters.save_lora(out_dir, member_state_dict(self.group.layers, self.index),
                           self.lora_config)
        if self.tokens is not None:
            text.save_learned_embeds(out_dir / text.EMBEDS_NAME, self.group.pipe, self.tokens)

    def state_dict(self) -> dict:
        lora = {f"{path}.{ab}": getattr(layer, ab)[str(self.index)].detach().float().cpu().clone()
                for path, layer in self.group.layers.items() if str(self.index) in layer.lora_A
                for ab in ("lora_A", "lora_B")}
        return {"lora": lora, "tokens": [r.detach().float().cpu().clone() for r in self.token_rows],
                "optimizer": self.optimizer.state_dict(),
                "lr_scheduler": self.lr_scheduler.state_dict(),
                "generator": self.generator.get_state(), "step": self.step_count}

    @torch.no_grad()
    def load_state_dict(self, state: dict) -> None:
        for key, value in state["lora"].items():
            path, _, ab = key.rpartition(".")
            getattr(self.group.layers[path], ab)[str(self.index)].copy_(value)
        tables = self.tokens.tables(self.group.pipe) if self.trains_token else []
        for w, i, row, value in zip(tables, self.tokens.ids if self.trains_token else [],
                                    self.token_rows, state["tokens"], strict=True):
            row.copy_(value.reshape(row.shape))
            w[i] = value.reshape(-1).to(w)  # as saved: no second renormalisation
        self.optimizer.load_state_dict(state["optimizer"])
        self.group.adam.adopt(self.index)  # the loaded moments into the flat buffers
        self.lr_scheduler.load_state_dict(state["lr_scheduler"])
        self.generator.set_state(state["generator"])
        self.step_count = state["step"]


def check_group(members: list[TrainOptions]) -> None:
    """Raise ValueError unless `members` can share one pipeline and one UNet call."""
    check_shared(members, SHARED, "a fused group")
    if members[0].mixed_precision == "fp16" or (
            autocast_dtype(members[0].mixed_precision, device()) == torch.float16):
        raise ValueError("fused training does not do fp16 loss scaling: use bf16 or fp32, or "
                         "train.group_size 1")


class FusedTrainer:
    """One pipeline, K members' LoRAs (routed layers) and learned-token rows."""

    def __init__(self, members: list[TrainOptions]) -> None:
        from dcobench.models import load_sdxl

        check_group(members)
        first = members[0]
        self.device = device()
        self.amp = autocast_dtype(first.mixed_precision, self.device)
        self.pipe = pipe = load_sdxl(first.base_model, device=self.device)
        for module in (pipe.unet, pipe.vae, pipe.text_encoder, pipe.text_encoder_2):
            module.requires_grad_(False)
        self.noise_scheduler = _training_scheduler(pipe)
        self.T = self.noise_scheduler.config.num_train_timesteps
        self.lora_configs = []
        for k, opts in enumerate(members):  # each LoRA drawn as its separate run draws it
            with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Already found a `peft_config`")  # intended
                torch.manual_seed(derive_seed(opts.seed, "lora-init"))
                self.lora_configs.append(adapters.add_lora(pipe.unet, opts.rank, opts.alpha,
                                                           name=f"m{k}", targets=opts.targets))
        self.router = Router()
        self.layers = route_peft_layers(pipe.unet, [f"m{k}" for k in range(len(members))],
                                        self.router)
        self.concept = validate_concept(first.concept_dir, first.resolution)
        self.members = [Member(k, opts, self) for k, opts in enumerate(members)]
        from dcobench.train.fused_text import TokenRows

        self.text = TokenRows(pipe, self.concept, [m for m in self.members if m.opts.learns_token])
        self._cache: dict = {}
        self._lower_precision()  # first: fixed captions are then encoded as the step encodes them
        for m in self.members:
            m.build()
        # every member's LoRA, gradients and Adam moments in flat buffers: one clip-and-step
        # for the whole group (multi_adamw: torch's AdamW arithmetic, far fewer calls)
        self.adam = MultiAdamW([m.optimizer for m in self.members])
        if self.amp is not None:
            pipe.vae.to("cpu")  # latents are cached: the VAE is not needed on the GPU any more
        self.text.capture()
        if first.gradient_checkpointing:
            pipe.unet.enable_gradient_checkpointing()

    def cached(self, key, build):
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def _lower_precision(self) -> None:
        """As the separate trainer: frozen weights to the autocast dtype, trainables fp32."""
        if self.amp is None:
            return
        pipe = self.pipe
        embeddings = [enc.get_input_embeddings() for _, enc in text.encoders(pipe)]
        masters = {p: p.data for k in range(len(self.members))
                   for p in member_parameters(self.layers, k)}
        masters.update({emb.weight: emb.weight.data for emb in embeddings})
        for module in (pipe.unet, pipe.text_encoder, pipe.text_encoder_2):
            module.to(self.amp)
        for param, data in masters.items():
            param.data = data
        for emb in embeddings:
            emb.register_forward_hook(lambda module, args, out, dtype=self.amp: out.to(dtype))

    def autocast(self):
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp)

    def _unet(self, x_t, t, embeds, pooled) -> torch.Tensor:
        return unet_eps(self.pipe.unet, x_t, t, embeds, pooled, self.members[0].opts.resolution)

    @torch.no_grad()
    def _references(self, active: list[Member], draws: dict[int, dict]) -> dict[int, torch.Tensor]:
        """ε_φ of every DCO member's rows in one no-adapter call; identical rows computed once."""
        unique: list[tuple[Member, dict]] = []
        owner: dict[int, int] = {}  # member index -> its rows' position in `unique`
        for m in active:
            if not m.objective.reference:
                continue
            d = draws[m.index]
            for j, (other, od) in enumerate(unique):
                if (other.data is m.data and torch.equal(od["idx"], d["idx"])
                        and torch.equal(od["t"][:od["n"]], d["t"][:d["n"]])
                        and torch.equal(od["x_t"][:od["n"]], d["x_t"][:d["n"]])):
                    owner[m.index] = j
                    break
            else:
                owner[m.index] = len(unique)
                unique.append((m, d))
        if not unique:
            return {}
        self.router.off()
        x_t = torch.cat([d["x_t"][:d["n"]] for _, d in unique])
        t = torch.cat([d["t"][:d["n"]] for _, d in unique])
        embeds = torch.cat([m.data.cond["base_embeds"][d["idx"]] for m, d in unique])
        pooled = torch.cat([m.data.cond["base_pooled"][d["idx"]] for m, d in unique])
        out = self._unet(x_t, t, embeds, pooled)
        starts = [0]
        for _, d in unique:
            starts.append(starts[-1] + d["n"])
        return {k: out[starts[j]:starts[j + 1]] for k, j in owner.items()}

    def _conditioning(self, active: list[Member], draws: dict[int, dict]):
        """Per member (embeds, pooled) of its rows: learned-token prompts encoded in one call
        with grad (each member's token id in its rows), fixed ones from the cache."""
        learned = self.text.encode({m.index: [m.data.captions[i] for i in draws[m.index]["idx"]]
                                    for m in active if m.trains_token})
        cond = {}
        for m in active:
            d = draws[m.index]
            embeds, pooled = learned.get(m.index) or (m.data.cond["embeds"][d["idx"]],
                                                       m.data.cond["pooled"][d["idx"]])
            if m.prior is not None:
                embeds = torch.cat([embeds, m.prior.cond["embeds"][d["pidx"]].to(embeds)])
                pooled = torch.cat([pooled, m.prior.cond["pooled"][d["pidx"]].to(pooled)])
            cond[m.index] = (embeds, pooled)
        return cond

    def step(self) -> dict[int, dict]:
        """One step of every active member; returns member index -> logged row (a member whose
        loss is not finite gets `failed` set and is not updated)."""
        active = [m for m in self.members if m.active]
        draws = {m.index: m.draw() for m in active}
        with self.autocast():
            refs = self._references(active, draws)
            cond = self._conditioning(active, draws)
            self.router.route([(m.index, draws[m.index]["x_t"].shape[0]) for m in active])
            pred = self._unet(torch.cat([draws[m.index]["x_t"] for m in active]),
                              torch.cat([draws[m.index]["t"] for m in active]),
                              torch.cat([cond[m.index][0] for m in active]),
                              torch.cat([cond[m.index][1] for m in active]))
            err = losses.per_sample_mse(pred, torch.cat([draws[m.index]["target"] for m in active]))
        rows, total, start = {}, [], 0
        for m in active:
            d = draws[m.index]
            size, n = d["x_t"].shape[0], d["n"]
            loss, row = m._loss(err[start:start + size], refs.get(m.index), d["t"],
                                d["target"][:n], n)
            start += size
            if not torch.isfinite(loss):
                m.failed = (f"non-finite loss {loss.item()} at step {m.step_count + 1} of "
                            f"{m.opts.out_dir}: lower lr ({m.opts.lr}) or check the data; no LoRA "
                            "was written")
                continue
            total.append(loss)
            rows[m.index] = row | {"loss": loss.item(), "lr": m.optimizer.param_groups[0]["lr"]}
        stepped = [m for m in active if m.failed is None]
        self.adam.zero_grad([m.index for m in stepped])
        if total:
            torch.stack(total).sum().backward()
        self.router.off()
        grads = self.text.member_grads(stepped)
        self._update(stepped, grads)
        for m in stepped:
            rows[m.index].update(logged_clip(m.grad_norm, m.opts.max_grad_norm))
            m.step_count += 1
        self.text.release()
        return rows

    def _update(self, stepped: list[Member], grads: dict) -> None:
        """Each member clipped by its own norm (LoRA + its embedding-matrix gradient) to its own
        max_grad_norm, then one AdamW step of all of them (each its own lr and step count),
        then each member's schedule and token rows; `m.grad_norm`: the norm before clipping."""
        if not stepped:
            return
        which = [m.index for m in stepped]
        matrices = [m.set_token_grads(grads.get(m.index, [])) for m in stepped]
        norms = self.adam.clip(which, [m.opts.max_grad_norm for m in stepped], matrices)
        self.adam.step(which)
        for m, norm in zip(stepped, norms, strict=True):
            m.grad_norm = norm
            m.after_step()
