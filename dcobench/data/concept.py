"""Concept folders: a set of images plus ``concept.yaml`` (kind, class, token, captions).

See docs/INTERFACES.md (section Concepts) for the file format. ``load_concept`` parses and
checks the metadata; ``validate_concept`` additionally opens every image. Every problem is
reported as a ``ConceptError`` whose message names the offending file and how to fix it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from dcobench.data.names import SAFE_NAME, name_problem
from dcobench.yamlio import YamlFileError, load_yaml

CONCEPT_FILE = "concept.yaml"
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp")
NOTE_EXTS = (".md", ".txt", ".json", ".yaml", ".yml", ".csv")  # notes that may sit beside images
KINDS = ("subject", "style")
ALLOWED_KEYS = ("kind", "class", "live", "token", "source", "captions")
SOURCE_KEYS = ("dataset", "path", "files")


class ConceptError(ValueError):
    """A concept folder or its concept.yaml is missing, malformed or inconsistent."""


@dataclass(frozen=True)
class Concept:
    """A validated concept folder.

    name: folder name; root: folder path; kind: "subject" | "style"; class_noun: class noun or
    style descriptor (replaces the token in base captions); live: live subject (pet);
    token: learned token string; captions: image file name -> caption (contains the token);
    source: where the images come from when the folder holds only concept.yaml
    ({"dataset", "path", "files"}; None = the images are in the folder).
    """

    name: str
    root: Path
    kind: str
    class_noun: str
    live: bool
    token: str
    captions: dict[str, str] = field(default_factory=dict)
    source: dict | None = None

    @property
    def missing_images(self) -> list[str]:
        """Listed image files not (yet) in the folder: a source concept before fetching."""
        return [f for f in sorted(self.captions) if not (self.root / f).is_file()]

    @property
    def images(self) -> list[Path]:
        """Image paths of the concept, sorted by file name."""
        return [self.root / f for f in sorted(self.captions)]

    @property
    def compact_caption(self) -> str:
        """The short DreamBooth-style caption, e.g. "a photo of sks robot"."""
        return f"a photo of sks {self.class_noun}"

    def base_caption(self, caption: str) -> str:
        """The caption with the learned token replaced by the class words."""
        return caption.replace(self.token, self.class_noun)

    def caption_for(self, image_path: str | Path) -> str:
        """The caption of an image of this concept (given by path or file name)."""
        name = Path(image_path).name
        if name not in self.captions:
            raise ConceptError(
                f"{self.root / CONCEPT_FILE}: no caption for image '{name}'; "
                f"known images: {', '.join(sorted(self.captions))}"
            )
        return self.captions[name]


def _is_image(p: Path) -> bool:
    return p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTS


def _read_yaml(root: Path) -> tuple[Path, dict]:
    """Check the folder and read concept.yaml as a mapping."""
    if not root.is_dir():
        raise ConceptError(f"{root}: concept folder does not exist or is not a directory")
    if problem := name_problem(root.name):
        raise ConceptError(f"{root}: the concept folder's {problem}; rename the folder")
    yml = root / CONCEPT_FILE
    if not yml.is_file():
        raise ConceptError(
            f"{yml}: missing {CONCEPT_FILE}; create it with keys kind, class, live, token, "
            "captions (see docs/INTERFACES.md, section Concepts)"
        )
    try:
        data = load_yaml(yml)  # UTF-8, duplicate keys refused: the workflow's one strict loader
    except YamlFileError as e:
        raise ConceptError(str(e)) from e
    if not isinstance(data, dict):
        raise ConceptError(
            f"{yml}: top level must be a mapping with keys {', '.join(ALLOWED_KEYS)}, "
            f"got {type(data).__name__}; write it as such a mapping (see docs/INTERFACES.md, "
            "section Concepts)"
        )
    unknown = sorted(str(k) for k in data if k not in ALLOWED_KEYS)
    if unknown:
        raise ConceptError(
            f"{yml}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(ALLOWED_KEYS)}"
        )
    return yml, data


def _check_fields(yml: Path, data: dict) -> tuple[str, str, bool, str]:
    """Validate kind, class, live and token; return them."""
    kind = data.get("kind")
    if kind not in KINDS:
        raise ConceptError(f"{yml}: kind is {kind!r}; set 'kind:' to one of {', '.join(KINDS)}")
    cls = data.get("class")
    if not isinstance(cls, str) or not cls.strip():
        raise ConceptError(
            f"{yml}: 'class' is {cls!r}; set it to a non-empty class noun or style "
            "descriptor (e.g. class: robot)"
        )
    live = data.get("live", False)
    if not isinstance(live, bool):
        raise ConceptError(f"{yml}: 'live' is {live!r}; set it to true or false")
    if live and kind == "style":
        raise ConceptError(f"{yml}: a style cannot be live; set 'live: false'")
    token = data.get("token")
    if not isinstance(token, str) or not token or re.search(r"\s", token):
        raise ConceptError(
            f"{yml}: 'token' is {token!r}; set it to a non-empty string without whitespace "
            '(e.g. token: "<my_concept>")'
        )
    return kind, cls.strip(), live, token


def _check_source(yml: Path, data: dict) -> dict | None:
    """Validate the optional `source:` mapping (dataset, path, files); return it."""
    src = data.get("source")
    if src is None:
        return None
    if not isinstance(src, dict) or set(src) != set(SOURCE_KEYS):
        raise ConceptError(
            f"{yml}: 'source' must be a mapping with exactly the keys {', '.join(SOURCE_KEYS)} "
            f"(e.g. source: {{dataset: dreambooth, path: dog, files: [00.jpg]}}), got {src!r}"
        )
    dataset, sub, files = src["dataset"], src["path"] or "", src["files"]
    if not isinstance(dataset, str) or not SAFE_NAME.match(dataset):
        raise ConceptError(f"{yml}: source.dataset {dataset!r} must be a path-safe name")
    parts = Path(str(sub)).parts
    if not isinstance(sub, str) or sub.startswith("/") or ".." in parts:
        raise ConceptError(f"{yml}: source.path {sub!r} must be a relative folder without '..'")
    if not isinstance(files, list) or not files or len(set(map(str, files))) != len(files):
        raise ConceptError(f"{yml}: source.files must be a non-empty list of distinct file names")
    for name in map(str, files):
        if not SAFE_NAME.match(name) or Path(name).suffix.lower() not in IMAGE_EXTS:
            raise ConceptError(
                f"{yml}: source.files entry {name!r} is not a path-safe image file name "
                f"(ending in {'/'.join(IMAGE_EXTS)})"
            )
    return {"dataset": dataset, "path": sub, "files": [str(f) for f in files]}


def _check_other_entries(root: Path) -> None:
    """Refuse what would otherwise be skipped in silence: files that are not images this
    pipeline reads (a .tif, a .heic, no extension), dangling links, sub-folders. Hidden entries
    and notes (NOTE_EXTS) may sit beside the images."""
    for entry in sorted(root.iterdir()):
        name = entry.name
        if name == CONCEPT_FILE or name.startswith(".") or entry.suffix.lower() in NOTE_EXTS:
            continue
        if entry.is_symlink() and not entry.exists():
            raise ConceptError(f"{entry}: a link to a file that does not exist (or a loop); "
                               "point it at the image or remove it")
        if entry.is_dir():
            raise ConceptError(f"{entry}: a folder inside a concept folder is not read; move its "
                               "images up into the concept folder or move it out")
        if not _is_image(entry):
            raise ConceptError(
                f"{entry}: not an image this pipeline reads (png, jpg/jpeg, webp); convert it "
                f"(e.g. to png) and caption it, or move it out of {root}")


def _check_captions(
    yml: Path, root: Path, data: dict, token: str, source: dict | None = None
) -> dict[str, str]:
    """Validate the captions mapping against the image files (or the source's file list)."""
    raw = data.get("captions")
    if not isinstance(raw, dict):
        raise ConceptError(
            f"{yml}: 'captions' must be a mapping image file name -> caption, got {raw!r}"
        )
    if source is not None and set(map(str, raw)) != set(source["files"]):
        diff = sorted(set(map(str, raw)) ^ set(source["files"]))
        raise ConceptError(
            f"{yml}: captions and source.files must name the same images; differing: "
            f"{', '.join(diff)}"
        )
    captions: dict[str, str] = {}
    for key, cap in raw.items():
        name = str(key)
        if not isinstance(cap, str) or not cap.strip():
            raise ConceptError(f"{yml}: caption of '{name}' is empty or not a string; write one")
        if token not in cap:
            raise ConceptError(
                f"{yml}: caption of '{name}' does not contain the token {token!r}; put the "
                f"token where the class noun stands: {cap!r}"
            )
        path = root / name
        if source is not None and name in source["files"] and not path.exists():
            captions[name] = cap.strip()  # not fetched yet: checked against source.files
            continue
        if _is_image(path) and (problem := name_problem(name)):
            raise ConceptError(f"{path}: the image file's {problem}; rename the file and its "
                               f"caption key in {yml}")
        if not SAFE_NAME.match(name) or not _is_image(path):
            twin = next((p.name for p in root.iterdir() if p.name.lower() == name.lower()
                         and p.name != name), None) if root.is_dir() else None
            if twin:
                raise ConceptError(f"{yml}: caption key '{name}' differs from the file {twin} "
                                   "only by case; write the key exactly as the file is named")
            if path.is_file():  # it exists, in a format this pipeline does not read
                raise ConceptError(
                    f"{path}: not an image this pipeline reads (png, jpg/jpeg, webp); convert "
                    f"it (e.g. to {Path(name).stem}.png) and rename its caption key in {yml}")
            raise ConceptError(
                f"{yml}: caption key '{name}' is not an image file in {root} (expected a "
                f"path-safe name ending in {'/'.join(IMAGE_EXTS)}); fix the key or add "
                f"the image {path}"
            )
        captions[name] = cap.strip()
    _check_other_entries(root)
    for img in sorted(p for p in root.iterdir() if _is_image(p)):
        if problem := name_problem(img.name):
            raise ConceptError(f"{img}: the image file's {problem}; rename the file")
        if img.name not in captions:
            raise ConceptError(
                f"{img}: image has no caption; add '{img.name}: \"... {token} ...\"' under "
                f"captions: in {yml}, or remove the image"
            )
    if not captions:
        raise ConceptError(f"{yml}: no images; add at least one image and its caption")
    return captions


def load_concept(path: str | Path) -> Concept:
    """Parse and check ``path/concept.yaml`` against the images of the folder."""
    root = Path(path)
    yml, data = _read_yaml(root)
    kind, cls, live, token = _check_fields(yml, data)
    source = _check_source(yml, data)
    captions = _check_captions(yml, root, data, token, source)
    return Concept(
        name=root.name, root=root, kind=kind, class_noun=cls, live=live, token=token,
        captions=captions, source=source,
    )


def image_key(path: Path, resolution: int | None) -> str:
    """What a decoded image's check depends on: its real path, size, mtime and the resolution."""
    st = os.stat(path)
    return f"{os.path.realpath(path)}|{st.st_size}|{st.st_mtime_ns}|{resolution}"


def validate_concept(path: str | Path, resolution: int | None = None,
                     checked: set[str] | None = None) -> Concept:
    """``load_concept`` plus: every image decodes (``dcobench.data.images.read_rgb``) and, when
    a training `resolution` is given, is large enough to train on; none is more than
    ``images.MAX_ASPECT`` times longer than wide. `checked`: keys (`image_key`) of images that
    passed before and are skipped; every image that passes now is added to it."""
    from dcobench.data.images import ImageError, check_aspect, check_size, read_rgb

    concept = load_concept(path)
    if concept.missing_images:
        raise ConceptError(
            f"{concept.root / CONCEPT_FILE}: image(s) {', '.join(concept.missing_images)} not in "
            f"{concept.root}; fetch them from source dataset "
            f"{concept.source['dataset'] if concept.source else '?'} (`python -m dcobench prepare "
            "fetch`, run by the workflow's fetch_concept rule)"
        )
    for img_path in concept.images:
        key = image_key(img_path, resolution) if checked is not None else ""
        if key and key in checked:
            continue
        try:
            img = read_rgb(img_path, draft_side=resolution)  # JPEG: reduced DCT scale, fast
            if resolution is not None:
                check_size(img_path, img.size, resolution)
            check_aspect(img_path, img.size)
        except ImageError as e:
            raise ConceptError(str(e)) from e
        if key:
            checked.add(key)
    return concept
