"""The oracle: a small CNN that reads every attribute of a world image back, and its metrics.

Output layout (``HEADS``): global heads (medium, personal style, background colour, texture)
then, per position slot (left, center, right), presence, class, colour, size and subject
(0 = an ordinary object, k = personal subject k). ``probabilities`` concatenates the softmax of
every head into one (N, 90) vector per image; the scorers work on these vectors, so they can
be cached like any embedding. Weights are stored as safetensors plus ``oracle.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .vocab import (
    BG_COLORS,
    CLASSES,
    COLORS,
    MEDIA,
    POSITIONS,
    SIZES,
    STYLES,
    SUBJECTS,
    TEXTURES,
    Request,
    Scene,
)

IGNORE = -100
GLOBAL_HEADS = (("medium", MEDIA), ("style", STYLES), ("bg_color", BG_COLORS),
                ("texture", TEXTURES))
SLOT_HEADS = (("present", ("no", "yes")), ("cls", CLASSES), ("color", COLORS), ("size", SIZES),
              ("subject", ("none",) + tuple(s.name for s in SUBJECTS)))
HEADS = GLOBAL_HEADS + tuple((f"{p}.{h}", v) for p in POSITIONS for h, v in SLOT_HEADS)
WIDTHS = [len(v) for _, v in HEADS]
OFFSETS = np.cumsum([0] + WIDTHS).tolist()
HEAD_INDEX = {name: i for i, (name, _) in enumerate(HEADS)}
WEIGHTS_FILE, CONFIG_FILE = "oracle.safetensors", "oracle.json"


def labels(scene: Scene) -> list[int]:
    """Target index per head (IGNORE where the head does not apply)."""
    out = [MEDIA.index(scene.medium), STYLES.index(scene.style), BG_COLORS.index(scene.bg_color),
           TEXTURES.index(scene.texture)]
    by_pos = {o.position: o for o in scene.objects}
    for p in POSITIONS:
        o = by_pos.get(p)
        if o is None:
            out += [0] + [IGNORE] * 4
            continue
        color = COLORS.index(o.color) if o.color is not None else IGNORE
        out += [1, CLASSES.index(o.cls), color, SIZES.index(o.size), o.subject]
    return out


class Oracle(nn.Module):
    """Conv net on (B, 3, 32, 32) images in [-1, 1] -> concatenated head logits (B, sum(WIDTHS))."""

    def __init__(self, width: int = 32, hidden: int = 256) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(3, w, 3, padding=1), nn.GELU(),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.GELU(),  # 16x16
            nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.GELU(),
            nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1), nn.GELU(),  # 8x8
            nn.Conv2d(4 * w, 4 * w, 3, padding=1), nn.GELU(),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * w * 64, hidden), nn.GELU(),
                                  nn.Linear(hidden, sum(WIDTHS)))
        self.config = {"width": width, "hidden": hidden}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def split_logits(logits: torch.Tensor) -> list[torch.Tensor]:
    """(B, sum(WIDTHS)) -> one (B, width) tensor per head."""
    return [logits[:, OFFSETS[i]:OFFSETS[i + 1]] for i in range(len(HEADS))]


def oracle_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Sum over heads of the cross-entropy (ignoring IGNORE targets); target (B, len(HEADS))."""
    losses = [F.cross_entropy(part, target[:, i], ignore_index=IGNORE, reduction="sum")
              for i, part in enumerate(split_logits(logits))]
    return torch.stack(losses).sum() / target.shape[0]


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """(B, sum(WIDTHS)) logits -> the softmax of each head, concatenated."""
    return torch.cat([p.softmax(-1) for p in split_logits(logits)], dim=-1)


def head_probs(probs: torch.Tensor, name: str) -> torch.Tensor:
    i = HEAD_INDEX[name]
    return probs[:, OFFSETS[i]:OFFSETS[i + 1]]


def save_oracle(model: Oracle, folder: Path) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_FILE))
    cfg = {**model.config, "heads": [[n, list(v)] for n, v in HEADS]}
    (folder / CONFIG_FILE).write_text(json.dumps(cfg, indent=1) + "\n")


def load_oracle(folder: str | Path) -> Oracle:
    """The oracle saved in `folder` (fp32, eval mode); errors name the folder."""
    from safetensors.torch import load_file

    folder = Path(folder)
    if not (folder / WEIGHTS_FILE).is_file() or not (folder / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"{folder}: not an oracle folder ({WEIGHTS_FILE} + {CONFIG_FILE})")
    cfg = json.loads((folder / CONFIG_FILE).read_text())
    if [[n, list(v)] for n, v in HEADS] != cfg.get("heads"):
        raise ValueError(f"{folder / CONFIG_FILE}: heads differ from this code's vocabulary")
    model = Oracle(cfg["width"], cfg["hidden"])
    model.load_state_dict({k: v.float() for k, v in load_file(str(folder / WEIGHTS_FILE)).items()})
    return model.eval()


# ---- metrics on probability vectors -------------------------------------------------------
# A request is encoded as 22 ints (-1 = not asked): medium, bg, texture, then per slot
# (present, cls, color, size), then two unplaced objects (cls, color, size).
N_REQUEST = 3 + 4 * len(POSITIONS) + 6


def encode_request(req: Request) -> torch.Tensor:
    """(N_REQUEST,) float tensor of requested indices (-1 = not asked)."""
    out = [MEDIA.index(req.medium) if req.medium else -1,
           BG_COLORS.index(req.bg_color) if req.bg_color else -1,
           TEXTURES.index(req.texture) if req.texture else -1]
    slots = {p: [-1, -1, -1, -1] for p in POSITIONS}
    unplaced = []
    for cls, color, size, pos in req.objects:
        idx = [CLASSES.index(cls) if cls else -1, COLORS.index(color) if color else -1,
               SIZES.index(size) if size else -1]
        if pos is None:
            unplaced.append(idx)
        else:
            slots[pos] = [1] + idx
    for p in POSITIONS:
        out += slots[p]
    unplaced = (unplaced + [[-1, -1, -1]] * 2)[:2]
    return torch.tensor(out + unplaced[0] + unplaced[1], dtype=torch.float32)


def attribute_hits(probs: torch.Tensor, requests: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per attribute kind, (N,) tensors: 1 right, 0 wrong, NaN not asked (argmax readings)."""
    nan = torch.full((probs.shape[0],), float("nan"))

    def hit(head: str, want: torch.Tensor) -> torch.Tensor:
        got = head_probs(probs, head).argmax(-1).float()
        return torch.where(want >= 0, (got == want).float(), nan)

    out = {"medium": hit("medium", requests[:, 0]), "bg_color": hit("bg_color", requests[:, 1]),
           "texture": hit("texture", requests[:, 2])}
    per_kind: dict[str, list[torch.Tensor]] = {"position": [], "cls": [], "color": [], "size": []}
    for s, p in enumerate(POSITIONS):
        req = requests[:, 3 + 4 * s: 7 + 4 * s]
        per_kind["position"].append(hit(f"{p}.present", req[:, 0]))
        seen = head_probs(probs, f"{p}.present").argmax(-1) == 1  # an absent object is all wrong
        for j, h in enumerate(("cls", "color", "size"), start=1):
            asked = torch.where(req[:, 0] > 0, req[:, j], torch.full_like(req[:, j], -1))
            per_kind[h].append(hit(f"{p}.{h}", asked) * seen.float())
    for u in range(2):  # unplaced: read at the slot the oracle finds most present
        req = requests[:, 15 + 3 * u: 18 + 3 * u]
        present = torch.stack([head_probs(probs, f"{p}.present")[:, 1] for p in POSITIONS], -1)
        slot = present.argmax(-1)
        for j, h in enumerate(("cls", "color", "size")):
            got = torch.stack([head_probs(probs, f"{p}.{h}").argmax(-1) for p in POSITIONS], -1)
            got = got.gather(1, slot[:, None])[:, 0].float()
            per_kind[h].append(torch.where(req[:, j] >= 0, (got == req[:, j]).float(), nan))
    for kind, parts in per_kind.items():
        stacked = torch.stack(parts, -1)
        asked = ~stacked.isnan()
        total = torch.where(asked, stacked, torch.zeros_like(stacked)).sum(-1)
        out[kind] = torch.where(asked.any(-1), total / asked.sum(-1).clamp_min(1), nan)
    return out


def prompt_accuracy(probs: torch.Tensor, requests: torch.Tensor) -> torch.Tensor:
    """(N,): fraction of the prompt's requested attributes read back correctly."""
    hits = attribute_hits(probs, requests)
    right = torch.zeros(probs.shape[0])
    asked = torch.zeros(probs.shape[0])
    for name, h in hits.items():
        n = _asked_count(requests, name)
        right += torch.nan_to_num(h) * n
        asked += n
    return torch.where(asked > 0, right / asked.clamp_min(1), torch.full_like(right, float("nan")))


def _asked_count(requests: torch.Tensor, kind: str) -> torch.Tensor:
    """How many attributes of `kind` each request asks for."""
    col = {"medium": [0], "bg_color": [1], "texture": [2]}
    if kind in col:
        return (requests[:, col[kind]] >= 0).float().sum(-1)
    j = {"position": 0, "cls": 1, "color": 2, "size": 3}[kind]
    slots = requests[:, 3:15].reshape(-1, len(POSITIONS), 4)  # (N, slot, field)
    n = ((slots[:, :, 0] > 0) & (slots[:, :, j] >= 0)).float().sum(-1)
    if kind != "position":
        n += (requests[:, 15:21].reshape(-1, 2, 3)[:, :, j - 1] >= 0).float().sum(-1)
    return n


def subject_probability(probs: torch.Tensor, ref_probs: torch.Tensor) -> torch.Tensor:
    """(N,): probability that each image shows the subject the references show (max over slots)."""
    def per_subject(p: torch.Tensor) -> torch.Tensor:  # (B, n_subjects) max over slots
        return torch.stack([head_probs(p, f"{s}.subject")[:, 1:] for s in POSITIONS], 0).amax(0)

    k = per_subject(ref_probs).mean(0).argmax()
    return per_subject(probs)[:, k]


def style_probability(probs: torch.Tensor, ref_probs: torch.Tensor) -> torch.Tensor:
    """(N,): probability of the personal style the references show."""
    k = head_probs(ref_probs, "style")[:, 1:].mean(0).argmax() + 1
    return head_probs(probs, "style")[:, k]
