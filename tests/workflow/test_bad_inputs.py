"""Bad inputs on a finished tiny run: each is refused by a real `snakemake` call before any job
starts, with a message that names the file or config key and says what to do, and results/
(paths, sizes, mtimes) is exactly as before. Config mistakes edit config.yaml; data mistakes
add a concept folder `bad` (otherwise valid) under data.subjects with one thing wrong."""

import copy
import math
import os
import shutil

import numpy as np
import pytest
import yaml
from PIL import Image
from wfrun import results_listing, run_snakemake, write_config

pytestmark = pytest.mark.slow

TOKEN = "<bad>"
FIX_WORDS = ("set ", "write", "use ", "add ", "remove", "rename", "replace", "fix", "save it as",
             "did you mean", "download", "convert", "point", "move", "create", "list it once",
             "keep one", "put the token", "larger image", "crop it")


def _set(config, dotted, value):
    node = config
    *parents, last = dotted.split(".")
    for key in parents:
        node = node[key]
    node[last] = value


def cfg_case(dotted, value, *expected):
    def make(workdir, config):
        _set(config, dotted, value(workdir) if callable(value) else value)
        return expected
    return make


def _png(path, size=(64, 64), mode="RGB", color="red"):
    Image.new(mode, size, color).save(path)


def _concept_yaml(folder, captions=None, **fields):
    meta = {"kind": "subject", "class": "mug", "live": False, "token": TOKEN,
            "captions": captions if captions is not None else
            {p.name: f"a photo of {TOKEN} on a table" for p in sorted(folder.glob("*.png"))}}
    meta.update(fields)
    (folder / "concept.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))


def data_case(mutate, *expected):
    """A valid concept folder `bad` (two 64² images), listed under data.subjects, then `mutate`."""
    def make(workdir, config):
        folder = workdir / "data" / "bad"
        folder.mkdir()
        _png(folder / "00.png")
        _png(folder / "01.png", color="blue")
        _concept_yaml(folder)
        mutate(folder)
        config["data"]["subjects"] = [*config["data"]["subjects"], "bad"]
        return expected
    return make


def _truncate(folder):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(
        folder / "00.png")  # noisy: the pixel data is most of the file
    data = (folder / "00.png").read_bytes()
    (folder / "00.png").write_bytes(data[: len(data) // 2])


def _bomb(folder):
    Image.new("1", (20000, 20000)).save(folder / "00.png")  # 400 Mpx: a decompression bomb


def _loop(folder):
    os.symlink(folder / "b.png", folder / "a.png")
    os.symlink(folder / "a.png", folder / "b.png")


def _uncaptioned(folder):
    _png(folder / "02.png")


def _caption_key(key):
    def mutate(folder):
        caps = {"00.png": f"a photo of {TOKEN}", key: f"a photo of {TOKEN} on grass"}
        (folder / "01.png").unlink()
        _concept_yaml(folder, caps)
    return mutate


def _raw_yaml(text: bytes):
    def mutate(folder):
        (folder / "concept.yaml").write_bytes(text)
    return mutate


def _empty_folder(path):
    path.mkdir(exist_ok=True)
    return str(path)


def _fields(**fields):
    return lambda folder: _concept_yaml(folder, **fields)


def _latin1_config(workdir, config):
    """config.yaml with one accented letter saved as Latin-1 (byte 0xe9)."""
    write_config(workdir, config)
    raw = (workdir / "config.yaml").read_bytes().replace(b"title: ", b"title: d\xe9mo ", 1)
    (workdir / "config.yaml").write_bytes(raw)
    return ("config.yaml", "not UTF-8", "save it as UTF-8")


def _duplicate_key_config(workdir, config):
    """config.yaml with a second `seed:` line at the end (YAML alone keeps the last)."""
    write_config(workdir, config)
    with open(workdir / "config.yaml", "a", encoding="utf-8") as f:
        f.write("seed: 7\n")
    return ("config.yaml, line", "key 'seed' appears twice", "keep one")


def _duplicate_key_configfile(workdir, config):
    """An extra --configfile (as config/paper.yaml is given) that sets `seed:` twice."""
    (workdir / "extra.yaml").write_text("seed: 1\nreport:\n  title: extra\nseed: 2\n")
    return ("extra.yaml, line 4", "key 'seed' appears twice (lines 1 and 4)", "keep one")


RAW_CONFIG = {"latin1_config", "duplicate_key_config", "duplicate_key_configfile"}  # written as is
EXTRA_ARGS = {"duplicate_key_configfile": lambda w: ["--configfile", str(w / "extra.yaml")]}


CASES = {
    # config.yaml: numbers
    "lr_nan": cfg_case("train.lr", math.nan, "train.lr", "not a finite number"),
    "lr_inf": cfg_case("train.lr", math.inf, "train.lr", "not a finite number"),
    "beta_minus_inf": cfg_case("train.beta", -math.inf, "train.beta", "not a finite number"),
    "w_text_nan": cfg_case("sample.w_text", math.nan, "sample.w_text", "finite"),
    "lr_unquoted_1e-4": cfg_case("train.lr", "1e-4", "train.lr", "write 1.0e-4"),
    "steps_as_text": cfg_case("train.steps.subject", "60", "train.steps.subject", "is text"),
    "lr_word": cfg_case("train.lr", "fast", "train.lr", "write a number"),
    "resolution_negative": cfg_case("train.resolution", -64, "train.resolution", "use a value"),
    "scheduler_typo": cfg_case("sample.scheduler", "ddimm", "sample.scheduler", "use one of"),
    "unknown_key": cfg_case("train.stepz", 3, "train", "unknown key 'stepz'"),
    # config.yaml: models
    "base_preset_typo": cfg_case("models.base", "tiny-sdxll", "models.base", "did you mean 'tiny-sdxl'"),
    "scorer_preset_typo": cfg_case("models.siglip", "tiny-siglp", "models.siglip", "did you mean"),
    "empty_model_folder": cfg_case("models.dino", lambda w: _empty_folder(w / "empty"),
                                   "models.dino", "no loadable model"),
    "missing_model_folder": cfg_case("models.clip", "./nowhere/clip", "models.clip",
                                     "no such folder"),
    "hub_id_not_cached": cfg_case("models.base", "someorg/not-downloaded-sdxl", "models.base",
                                  "hf download someorg/not-downloaded-sdxl"),
    # config.yaml: names and registries
    "name_with_space": cfg_case("data.subjects", ["toy_robot", "my dog"], "data.subjects",
                                "e.g. 'my_dog'"),
    "name_300_chars": cfg_case("data.subjects", ["d" * 300], "data.subjects", "bytes long"),
    "name_250_chars": cfg_case("data.styles", ["s" * 250], "data.styles", "bytes long"),
    "experiment_name": cfg_case("experiment", "my run!", "experiment", "e.g. 'my_run'"),
    "variant_typo": cfg_case("train.variants.subject", ["dcoo"], "train.variants.subject",
                             "did you mean 'dco'"),
    "scorer_typo": cfg_case("score.metrics.subject", ["dinov2"], "score.metrics.subject",
                            "did you mean"),
    "merger_typo": cfg_case("merge.mergers", ["zipl"], "merge.mergers", "did you mean"),
    "missing_concept": cfg_case("data.subjects", ["toy_robot", "no_such"], "data/no_such",
                                "create it"),
    "listed_twice": cfg_case("data.styles", ["mosaic_style", "toy_robot"], "'toy_robot'",
                             "list it once"),
    "latin1_config": _latin1_config,
    "duplicate_key_config": _duplicate_key_config,
    "duplicate_key_configfile": _duplicate_key_configfile,
    # concept folders: images
    "image_1x1": data_case(lambda f: _png(f / "00.png", (1, 1)), "bad/00.png", "1×1",
                           "larger image"),
    "image_20px": data_case(lambda f: _png(f / "01.png", (20, 90)), "bad/01.png", "too small"),
    "panorama_4000x40": data_case(lambda f: _png(f / "00.png", (4000, 40)), "bad/00.png",
                                  "4000×40", "aspect ratio of 100.0:1", "the limit is 4:1"),
    "truncated_png": data_case(_truncate, "bad/00.png", "replace it"),
    "text_named_png": data_case(lambda f: (f / "00.png").write_text("not an image"),
                                "bad/00.png", "cannot be read"),
    "empty_file": data_case(lambda f: (f / "01.png").write_bytes(b""), "bad/01.png", "replace"),
    "decompression_bomb": data_case(_bomb, "bad/00.png", "replace it"),
    "tiff_beside": data_case(lambda f: _png(f / "02.tif"), "bad/02.tif", "convert it"),
    "gif_beside": data_case(lambda f: Image.new("P", (64, 64)).save(f / "02.gif"),
                            "bad/02.gif", "convert it"),
    "no_extension": data_case(lambda f: (f / "photo").write_bytes(b"\x89PNG"), "bad/photo",
                              "move it out"),
    "dangling_link": data_case(lambda f: os.symlink(f / "gone.png", f / "02.png"),
                               "bad/02.png", "does not exist"),
    "link_loop": data_case(_loop, "bad/a.png", "remove it"),
    "sub_folder": data_case(lambda f: (f / "more").mkdir(), "bad/more", "move"),
    "unsafe_file_name": data_case(lambda f: (_png(f / "my photo.png"), _concept_yaml(f)),
                                  "my photo.png", "rename"),
    # concept folders: concept.yaml
    "uncaptioned_image": data_case(_uncaptioned, "bad/02.png", "has no caption"),
    "caption_without_image": data_case(_caption_key("05.png"), "'05.png'", "add the image"),
    "caption_key_case": data_case(_caption_key("00.PNG"), "'00.PNG'", "only by case"),
    "duplicate_caption_key": data_case(_raw_yaml(
        b"kind: subject\nclass: mug\ntoken: '<bad>'\ncaptions:\n  00.png: a photo of <bad>\n"
        b"  01.png: a photo of <bad> here\n  00.png: a photo of <bad> again\n"),
        "bad/concept.yaml", "keep one"),
    "latin1_concept_yaml": data_case(_raw_yaml(
        b"kind: subject\nclass: caf\xe9 mug\ntoken: '<bad>'\ncaptions:\n"
        b"  00.png: a photo of <bad>\n  01.png: a photo of <bad> here\n"),
        "bad/concept.yaml", "save it as UTF-8"),
    "invalid_yaml": data_case(_raw_yaml(b"kind: subject\ncaptions: [unclosed\n"),
                              "bad/concept.yaml", "fix the syntax"),
    "yaml_is_a_list": data_case(_raw_yaml(b"- 00.png\n- 01.png\n"), "bad/concept.yaml",
                                "top level must be a mapping"),
    "no_concept_yaml": data_case(lambda f: (f / "concept.yaml").unlink(), "bad/concept.yaml",
                                 "create it"),
    "token_not_in_caption": data_case(_fields(captions={"00.png": "a photo of a mug",
                                                        "01.png": f"a {TOKEN}"}),
                                      "bad/concept.yaml", "put the token"),
    "kind_typo": data_case(_fields(kind="subjekt"), "bad/concept.yaml", "set 'kind:'"),
    "class_empty": data_case(_fields(**{"class": ""}), "bad/concept.yaml", "set it"),
    "live_style": data_case(_fields(kind="style", live=True), "bad/concept.yaml", "live"),
    "no_images": data_case(lambda f: ([p.unlink() for p in f.glob("*.png")],
                                      _concept_yaml(f, {})), "bad/concept.yaml", "add at least one"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_refused_before_any_job(finished_run, case):
    workdir, config = finished_run
    before = results_listing(workdir)
    bad_config = copy.deepcopy(config)
    try:
        expected = CASES[case](workdir, bad_config)
        if case not in RAW_CONFIG:
            write_config(workdir, bad_config)
        extra = EXTRA_ARGS[case](workdir) if case in EXTRA_ARGS else []
        out = run_snakemake(workdir, None, "--cores", "1", *extra, timeout=600)
    finally:
        shutil.rmtree(workdir / "data" / "bad", ignore_errors=True)
        (workdir / "extra.yaml").unlink(missing_ok=True)
        write_config(workdir, config)
    text = out.stdout + out.stderr
    print(f"{case}: {text.strip()[-600:]}")
    assert out.returncode != 0, text[-3000:]
    assert "Traceback" not in text and "Job stats" not in text, text[-3000:]  # no job started
    for part in expected:
        assert part in text, (part, text[-3000:])
    assert any(word in text for word in FIX_WORDS), text[-3000:]  # says what to do
    assert results_listing(workdir) == before
