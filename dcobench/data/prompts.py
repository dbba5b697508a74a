"""Evaluation prompt sets as templates with `{subject}` / `{style}` slots.

A template is filled twice: with the learned-token phrase for the fine-tuned model θ
(e.g. "<toy_robot>", or "sks robot" under rare-token captions) and with the class words for the
pretrained model φ and for scoring (e.g. "robot"). The sets are text files in data/prompts/
(one template per line, `#` comment lines name each block's source); `object` / `live` are the
DreamBooth evaluation prompts (github.com/google/dreambooth, CC-BY-4.0).

Config `sample.prompt_sets` names sets per group; a group name resolves by the concept kind:
subject `customization` -> object_customization | live_customization (by `live:`),
`stylization` -> object_stylization | live_stylization, `dreambooth` -> object | live;
style `parti190` / `style`; merge `merge`. Several sets are sampled into one folder with
consecutive prompt indices (index.csv column `prompt_set` names each row's set).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dcobench.registry import Registry

PROMPT_DIR = Path(__file__).resolve().parents[2] / "data" / "prompts"


def read_prompt_file(path: Path) -> list[str]:
    """Templates of a prompt file: non-empty lines that are not `#` comments."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def _file_set(name: str) -> list[str]:
    return read_prompt_file(PROMPT_DIR / f"{name}.txt")


OBJECT_CUSTOMIZATION = _file_set("object_customization")
LIVE_CUSTOMIZATION = _file_set("live_customization")
OBJECT_STYLIZATION = _file_set("object_stylization")
LIVE_STYLIZATION = _file_set("live_stylization")
PARTI190 = _file_set("parti190")
MERGE_PROMPTS = _file_set("merge")
OBJECT_PROMPTS = OBJECT_CUSTOMIZATION[:25]  # the DreamBooth lists, verbatim
LIVE_PROMPTS = LIVE_CUSTOMIZATION[:25]
STYLIZATION_PROMPTS = OBJECT_STYLIZATION[:10]
# Style personalization contents for the demo (the paper preset uses parti190).
STYLE_PROMPTS = [
    "a cat in {style} style",
    "a lighthouse by the sea in {style} style",
    "a red car in {style} style",
    "a bowl of fruit in {style} style",
    "a mountain landscape in {style} style",
    "a portrait of a woman in {style} style",
    "a bicycle leaning on a wall in {style} style",
    "a city skyline at night in {style} style",
]

PROMPT_SETS: Registry = Registry("prompt set")
for _name, _prompts in {
    "object": OBJECT_PROMPTS,
    "live": LIVE_PROMPTS,
    "object_customization": OBJECT_CUSTOMIZATION,
    "live_customization": LIVE_CUSTOMIZATION,
    "object_stylization": OBJECT_STYLIZATION,
    "live_stylization": LIVE_STYLIZATION,
    "stylization": STYLIZATION_PROMPTS,
    "style": STYLE_PROMPTS,
    "parti190": PARTI190,
    "merge": MERGE_PROMPTS,
}.items():
    PROMPT_SETS.register(_name, _prompts)

# Group -> set names usable in config (sample.prompt_sets); (object, live) pairs resolve by kind.
_BY_LIVE = {"customization": ("object_customization", "live_customization"),
            "stylization": ("object_stylization", "live_stylization"),
            "dreambooth": ("object", "live")}
GROUP_SETS = {"subject": list(_BY_LIVE), "style": ["parti190", "style"], "merge": ["merge"]}


@dataclass(frozen=True)
class GeneratedSet:
    """A prompt set generated per concept from its folder (a plug-in's, e.g. the world's sets
    from a concept's truth): `templates(folders)` with folders slot -> concept folder."""

    group: str  # subject | style | merge
    templates: Callable[[dict[str, Path]], list[str]]


GENERATED_SETS: Registry[GeneratedSet] = Registry("generated prompt set")


def register_generated_set(name: str, group: str,
                           templates: Callable[[dict[str, Path]], list[str]]) -> None:
    """Add a generated set: usable in config sample.prompt_sets.<group> like the file sets."""
    GENERATED_SETS.register(name, GeneratedSet(group, templates))
    GROUP_SETS[group].append(name)


DEFAULT_SETS = {"subject": ["dreambooth"], "style": ["style"], "merge": ["merge"]}


def resolve_set(group: str, name: str, live: bool) -> str:
    """The registered set for a config set name in `group`; KeyError with a message if unknown."""
    if group not in GROUP_SETS or name not in GROUP_SETS[group]:
        known = ", ".join(GROUP_SETS.get(group, []))
        raise KeyError(f"unknown prompt set {name!r} for group {group!r}; known: {known}")
    if name in _BY_LIVE:
        return _BY_LIVE[name][1 if live else 0]
    return name


def set_names(name: str) -> tuple[str, ...]:
    """The registered sets a config set name stands for: ('object_customization',
    'live_customization') for 'customization', else (name,)."""
    return _BY_LIVE.get(name, (name,))


@dataclass(frozen=True)
class Prompt:
    """One evaluation prompt: `index` in its folder, the text written with the concepts' tokens
    (`theta`; data.captions turns it into a model's θ / φ pair), the plain text with class
    words (`base`: scoring, the pretrained model), its set name."""

    index: int
    theta: str
    base: str
    prompt_set: str = ""


def fill(templates: list[str], theta: dict[str, str], base: dict[str, str],
         start: int = 0, prompt_set: str = "") -> list[Prompt]:
    """Fill every template with the concepts' tokens (θ) and their class words (plain)."""
    return [
        Prompt(start + i, t.format_map(_Slots(theta)), t.format_map(_Slots(base)), prompt_set)
        for i, t in enumerate(templates)
    ]


class _Slots(dict):
    def __missing__(self, key: str) -> str:
        raise KeyError(f"prompt template needs a {{{key}}} slot value; have {sorted(self)}")


def select(templates: list[str], count: int | None) -> list[str]:
    """The first `count` templates (all when None): a deterministic, documented subset."""
    return list(templates if count is None else templates[:count])


def build_prompts(group: str, names: list[str] | None, live: bool, count: int | None,
                  theta: dict[str, str], base: dict[str, str],
                  folders: dict[str, Path] | None = None) -> list[Prompt]:
    """The prompts of a sample folder: each named set (first `count` of each), indices running
    on across sets. folders (slot -> concept folder) feed the sets generated per concept
    (world_*)."""
    out: list[Prompt] = []
    for name in names or DEFAULT_SETS[group]:
        set_name = resolve_set(group, name, live)
        templates = (GENERATED_SETS[set_name].templates(folders or {})
                     if set_name in GENERATED_SETS else PROMPT_SETS[set_name])
        out += fill(select(templates, count), theta, base, len(out), set_name)
    return out


# --- The Parti subset for style personalization (paper §5.2: 190 Parti prompts, unpublished) ---
PARTI_EXCLUDED_CHALLENGES = ("Style & Format", "Writing & Symbols", "Linguistic Structures")
PARTI_EXCLUDED_CATEGORIES = ("Abstract", "Arts", "Illustrations")
PARTI_MEDIUM_WORDS = re.compile(
    r"\b(style|painting|painted|drawing|drawn|sketch|photo|photograph|illustration|cartoon|"
    r"anime|render|rendering|3d|watercolor|oil|pixel|poster|logo|sign|text|word|letters?|"
    r"written|says|saying)\b", re.IGNORECASE)


def parti_subset(tsv: Path, n: int = 190, max_words: int = 16) -> list[str]:
    """The deterministic Parti subset as `{style}` templates.

    Rule: from PartiPrompts.tsv (file order) keep prompts whose Challenge is not Style & Format,
    Writing & Symbols or Linguistic Structures, whose Category is not Abstract, Arts or
    Illustrations, with 3..`max_words` words, no quotes/braces and no medium or text words
    (style, painting, drawing, photo, illustration, cartoon, render, 3d, watercolor, oil, pixel,
    poster, logo, sign, text, word, letter(s), written, says); drop exact duplicates; then take
    prompts round-robin over the categories (sorted by name), each in file order, until `n`.
    Each becomes "<prompt without final period> in {style} style", first letter lower-cased.
    """
    with open(tsv, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    by_cat: dict[str, list[str]] = {}
    seen: set[str] = set()
    for r in rows:
        text = " ".join(r["Prompt"].split()).rstrip(".")
        words = len(text.split())
        if (r["Challenge"] in PARTI_EXCLUDED_CHALLENGES or r["Category"] in PARTI_EXCLUDED_CATEGORIES
                or not 3 <= words <= max_words or re.search(r"[\"'{}]", text)
                or PARTI_MEDIUM_WORDS.search(text) or text.lower() in seen):
            continue
        seen.add(text.lower())
        by_cat.setdefault(r["Category"], []).append(text[0].lower() + text[1:] + " in {style} style")
    queues = [list(by_cat[c]) for c in sorted(by_cat)]
    out: list[str] = []
    while len(out) < n and any(queues):
        for q in queues:
            if q and len(out) < n:
                out.append(q.pop(0))
    if len(out) < n:
        raise ValueError(f"{tsv}: only {len(out)} prompts pass the Parti subset rule, need {n}")
    return out
