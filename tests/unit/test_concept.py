"""Concept folders: loading/validation of concept.yaml and the procedural demo concepts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from PIL import Image

from dcobench.data import Concept, ConceptError, load_concept, validate_concept
from dcobench.data.demo import DEMO_CONCEPTS, demo_names, write_demo_concepts


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    write_demo_concepts(root)
    return root


@pytest.fixture
def robot(demo_root, tmp_path) -> Path:
    """A private, modifiable copy of the toy_robot concept folder."""
    return Path(shutil.copytree(demo_root / "toy_robot", tmp_path / "toy_robot"))


def _edit_yaml(folder: Path, fn) -> None:
    path = folder / "concept.yaml"
    data = yaml.safe_load(path.read_text())
    fn(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _raises(folder: Path, *fragments: str, validate: bool = False) -> str:
    with pytest.raises(ConceptError) as err:
        (validate_concept if validate else load_concept)(folder)
    msg = str(err.value)
    for frag in fragments:
        assert frag in msg, f"{frag!r} not in error message: {msg}"
    return msg


def test_demo_names():
    assert demo_names() == ["toy_robot", "spotted_mug", "mosaic_style"]
    assert set(DEMO_CONCEPTS) == set(demo_names())


@pytest.mark.parametrize(
    "name,kind,cls,n",
    [("toy_robot", "subject", "robot", 5), ("spotted_mug", "subject", "mug", 5),
     ("mosaic_style", "style", "mosaic", 4)],
)
def test_demo_concepts_load_and_validate(demo_root, name, kind, cls, n):
    c = validate_concept(demo_root / name)
    assert isinstance(c, Concept)
    assert (c.name, c.kind, c.class_noun, c.live, c.token) == (name, kind, cls, False, f"<{name}>")
    assert load_concept(demo_root / name) == c
    assert len(c.images) == n and c.images == sorted(c.images)
    for img in c.images:
        cap = c.caption_for(img)
        assert c.token in cap and len(cap.split()) >= 8  # comprehensive captions
        assert c.token not in c.base_caption(cap) and cls in c.base_caption(cap)
        with Image.open(img) as im:
            assert im.size == (128, 128) and im.mode == "RGB"
    assert c.compact_caption == f"a photo of sks {cls}"


def test_base_caption_and_caption_for(demo_root):
    c = load_concept(demo_root / "toy_robot")
    assert c.base_caption("a photo of a <toy_robot> on grass") == "a photo of a robot on grass"
    assert c.caption_for("00.png") == c.caption_for(c.root / "00.png")
    with pytest.raises(ConceptError, match="99.png"):
        c.caption_for("99.png")


def test_demo_is_deterministic_and_small(tmp_path):
    a, b = write_demo_concepts(tmp_path / "a"), write_demo_concepts(tmp_path / "b")
    files = sorted(p.relative_to(tmp_path / "a") for d in a for p in d.iterdir())
    assert files == sorted(p.relative_to(tmp_path / "b") for d in b for p in d.iterdir())
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    assert sum((tmp_path / "a" / r).stat().st_size for r in files if r.suffix == ".png") < 200_000
    write_demo_concepts(tmp_path / "a", ["mosaic_style"])  # rewriting in place is stable
    load_concept(tmp_path / "a" / "mosaic_style")
    with pytest.raises(ValueError, match="unknown"):
        write_demo_concepts(tmp_path, ["nope"])


def test_missing_concept_yaml(robot):
    (robot / "concept.yaml").unlink()
    _raises(robot, "concept.yaml", "missing")


def test_empty_folder(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    _raises(empty, "concept.yaml")


def test_no_images(tmp_path):
    folder = tmp_path / "noimg"
    folder.mkdir()
    meta = {"kind": "subject", "class": "robot", "token": "<t>", "captions": {}}
    (folder / "concept.yaml").write_text(yaml.safe_dump(meta))
    _raises(folder, "concept.yaml", "no images")


def test_not_a_mapping(robot):
    (robot / "concept.yaml").write_text("- just\n- a list\n")
    _raises(robot, "concept.yaml", "mapping")


def test_bad_kind(robot):
    _edit_yaml(robot, lambda d: d.update(kind="object"))
    _raises(robot, "concept.yaml", "kind", "subject")


@pytest.mark.parametrize(
    "key,value,frag",
    [("class", "", "class"), ("live", "yes", "live"), ("token", "<two words>", "token"),
     ("token", "", "token"), ("colour", "red", "unknown key")],
)
def test_bad_fields(robot, key, value, frag):
    _edit_yaml(robot, lambda d: d.update({key: value}))
    _raises(robot, "concept.yaml", frag)


def test_live_defaults_to_false(robot):
    _edit_yaml(robot, lambda d: d.pop("live"))
    assert load_concept(robot).live is False


def test_token_missing_from_caption(robot):
    _edit_yaml(robot, lambda d: d["captions"].update({"02.png": "a photo of a robot"}))
    _raises(robot, "concept.yaml", "02.png", "<toy_robot>")


def test_caption_for_missing_image(robot):
    (robot / "03.png").unlink()
    _raises(robot, "concept.yaml", "03.png")


def test_captioned_gif_is_told_to_convert_not_to_add(robot):
    """A captioned file in a format we do not read is named as such, not reported as missing."""
    Image.open(robot / "03.png").save(robot / "03.gif")
    (robot / "03.png").unlink()
    _edit_yaml(robot, lambda d: d["captions"].update({"03.gif": d["captions"].pop("03.png")}))
    msg = _raises(robot, "03.gif", "not an image this pipeline reads", "03.png")
    assert "add the image" not in msg


def test_image_without_caption(robot):
    shutil.copy(robot / "00.png", robot / "extra.png")
    _raises(robot, "extra.png", "no caption")


def test_unsafe_image_name(robot):
    shutil.copy(robot / "00.png", robot / "my photo.png")
    _raises(robot, "my photo.png", "path-safe")


def test_corrupt_image(robot):
    (robot / "01.png").write_bytes(b"not a png at all")
    load_concept(robot)  # metadata is fine
    _raises(robot, "01.png", "cannot be read", validate=True)


def test_bad_folder_name(robot, tmp_path):
    bad = robot.rename(tmp_path / "toy robot")
    _raises(bad, "toy robot", "path-safe")


# --- source concepts (concept.yaml only; images fetched from a dataset) ---------------------

REPO = Path(__file__).resolve().parents[2]


def _source_concept(tmp_path, files=("00.jpg", "01.jpg"), **extra) -> Path:
    folder = tmp_path / "repo" / "my_dog"
    folder.mkdir(parents=True)
    data = {"kind": "subject", "class": "dog", "live": True, "token": "<my_dog>",
            "source": {"dataset": "mine", "path": "dogs/my_dog", "files": list(files)},
            "captions": {f: f"a photo of a <my_dog> on grass, picture {f}" for f in files}, **extra}
    (folder / "concept.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return folder


def _dataset(tmp_path, files=("00.jpg", "01.jpg")) -> Path:
    root = tmp_path / "dataset"
    (root / "dogs" / "my_dog").mkdir(parents=True)
    for i, f in enumerate(files):
        Image.new("RGB", (40 + i, 30), (200, 10 * i, 0)).save(root / "dogs" / "my_dog" / f)
    return root


def test_source_concept_loads_without_images_and_validate_asks_for_fetch(tmp_path):
    folder = _source_concept(tmp_path)
    c = load_concept(folder)
    assert c.source == {"dataset": "mine", "path": "dogs/my_dog", "files": ["00.jpg", "01.jpg"]}
    assert c.missing_images == ["00.jpg", "01.jpg"]
    _raises(folder, "00.jpg, 01.jpg", "not in", "fetch", validate=True)


@pytest.mark.parametrize("source,fragment", [
    ({"dataset": "mine", "path": "x"}, "exactly the keys"),
    ({"dataset": "bad name", "path": "x", "files": ["00.jpg"]}, "path-safe name"),
    ({"dataset": "mine", "path": "../x", "files": ["00.jpg"]}, "without '..'"),
    ({"dataset": "mine", "path": "x", "files": ["00.txt"]}, "not a path-safe image"),
    ({"dataset": "mine", "path": "x", "files": ["00.jpg", "00.jpg"]}, "distinct"),
    ({"dataset": "mine", "path": "x", "files": ["00.jpg", "02.jpg"]}, "same images; differing: 01.jpg, 02.jpg"),
])
def test_bad_source_is_named(tmp_path, source, fragment):
    folder = _source_concept(tmp_path)
    _edit_yaml(folder, lambda d: d.update(source=source))
    _raises(folder, "concept.yaml", fragment)


def test_fetch_links_images_and_writes_yaml_last(tmp_path):
    from dcobench.data.fetch import fetch_concept

    folder, dataset = _source_concept(tmp_path), _dataset(tmp_path)
    out = fetch_concept(folder, tmp_path / "fetched" / "my_dog", {"mine": {"local": str(dataset)}})
    c = validate_concept(out)
    assert [p.name for p in c.images] == ["00.jpg", "01.jpg"] and not c.missing_images
    assert (out / "00.jpg").resolve() == (dataset / "dogs/my_dog/00.jpg").resolve()
    assert (out / "concept.yaml").read_text() == (folder / "concept.yaml").read_text()


def test_fetch_errors_name_the_problem_and_leave_no_yaml(tmp_path):
    from dcobench.data.fetch import fetch_concept

    folder, dataset = _source_concept(tmp_path), _dataset(tmp_path, files=("00.jpg",))
    out = tmp_path / "fetched" / "my_dog"
    with pytest.raises(ConceptError, match=r"01.jpg does not exist"):
        fetch_concept(folder, out, {"mine": {"local": str(dataset)}})
    assert not (out / "concept.yaml").exists()
    with pytest.raises(ConceptError, match="not in data.sources"):
        fetch_concept(folder, out, {"other": {"local": str(dataset)}})
    with pytest.raises(ConceptError, match="no usable source"):
        fetch_concept(folder, out, {"mine": {"local": str(tmp_path / "nope"), "url": None}})
    with pytest.raises(ConceptError, match="DCOBENCH_UNSET_MIRROR_FOR_TEST is not set"):
        fetch_concept(folder, out, {"mine": {"local": "$DCOBENCH_UNSET_MIRROR_FOR_TEST/x"}})
    (dataset / "dogs/my_dog/01.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ConceptError, match="cannot be read as an image"):
        fetch_concept(folder, out, {"mine": {"local": str(dataset)}})
    assert not (out / "concept.yaml").exists()


# The concept collections the repository ships, with their sizes; a user's own folders (the README
# puts them under the git-ignored data/local/, but anywhere else under data/ too) are not checked.
SHIPPED = {"dreambooth": (27, "subject"), "styledrop": (10, "style"), "oneshot": (5, "subject")}


@pytest.mark.parametrize("collection", sorted(SHIPPED))
def test_repository_concept_files_are_valid(collection):
    count, kind = SHIPPED[collection]
    folders = sorted(p.parent for p in (REPO / "data" / collection).glob("*/concept.yaml"))
    assert len(folders) == count
    for folder in folders:
        c = load_concept(folder)
        assert c.source is not None and c.kind == kind, folder
        assert c.token == f"<{c.name}>", folder
