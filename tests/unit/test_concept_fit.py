"""Your own concepts: refused at DAG-build time where the config cannot use them; results folders
that an overlay would overwrite; the concept.yaml scaffold."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

from dcobench.config import ConfigError, load_setup
from dcobench.data import load_concept
from dcobench.ownership import OwnershipError, check_owner, claim

REPO = Path(__file__).resolve().parents[2]
DEMO = yaml.safe_load((REPO / "config.yaml").read_text())  # the world demo
TINY = yaml.safe_load((REPO / "config" / "tiny.yaml").read_text())  # photo-style prompt sets


def _photos(folder: Path, n: int = 3) -> Path:
    folder.mkdir(parents=True)
    for i in range(n):
        Image.new("RGB", (96, 96), (40 * i, 90, 160)).save(folder / f"{i:02d}.jpg")
    return folder


def _scaffold(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dcobench", "new-concept", str(folder), *args],
                          capture_output=True, text=True, cwd=REPO, timeout=120)


def test_photo_subject_in_the_world_config_is_refused_naming_the_keys(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # report.claims is relative to the repository
    cat = _photos(tmp_path / "local" / "my_cat")
    assert _scaffold(cat, "--class", "cat", "--live").returncode == 0
    cfg = copy.deepcopy(DEMO)
    cfg["data"].update(root=str(tmp_path), subjects=["split_star", "local/my_cat"])
    with pytest.raises(ConfigError) as err:
        load_setup(cfg, decode=False)
    msg = str(err.value)
    assert "'my_cat' is not a world concept" in msg
    for key in ("sample.prompt_sets.subject (world_novel)", "score.metrics.subject (prompt_acc)",
                "config/my_concepts.yaml", "photo prompt sets"):
        assert key in msg, msg
    assert "split_star" not in msg  # the world's own subject is fine


def test_world_concept_with_photo_prompt_sets_is_refused(monkeypatch):
    monkeypatch.chdir(REPO)
    cfg = copy.deepcopy(DEMO)
    cfg["sample"]["prompt_sets"]["subject"] = ["dreambooth"]
    cfg["score"]["metrics"]["subject"] = ["dino"]
    with pytest.raises(ConfigError, match=r"'split_star' is a world concept, but "
                                          r"sample.prompt_sets.subject \(dreambooth\)"):
        load_setup(cfg, decode=False)


def test_photo_subject_fits_a_photo_config(tmp_path):
    cat = _photos(tmp_path / "local" / "my_cat")
    assert _scaffold(cat, "--class", "cat").returncode == 0
    cfg = copy.deepcopy(TINY)
    cfg["data"].update(root=str(tmp_path), demo=False, subjects=["local/my_cat"], styles=[])
    setup = load_setup(cfg, decode=True)
    assert set(setup.concepts) == {"my_cat"}


def test_new_concept_drafts_a_valid_concept_yaml_and_refuses_to_overwrite(tmp_path):
    cat = _photos(tmp_path / "my_cat")
    done = _scaffold(cat, "--class", "cat", "--live")
    assert done.returncode == 0, done.stderr
    concept = load_concept(cat)
    assert (concept.kind, concept.class_noun, concept.live, concept.token) == (
        "subject", "cat", True, "<my_cat>")
    assert [p.name for p in concept.images] == ["00.jpg", "01.jpg", "02.jpg"]
    assert "comprehensive" in (cat / "concept.yaml").read_text()  # says what to write
    again = _scaffold(cat, "--class", "cat")
    assert again.returncode != 0 and "--force" in again.stderr
    style = _photos(tmp_path / "my_style", 2)
    assert _scaffold(style, "--class", "ink wash painting", "--kind", "style").returncode == 0
    assert load_concept(style).kind == "style"
    empty = tmp_path / "nothing"
    empty.mkdir()
    none = _scaffold(empty, "--class", "cat")
    assert none.returncode != 0 and "no images" in none.stderr


def test_results_folder_is_owned_by_its_config_files(tmp_path):
    results = tmp_path / "results" / "demo"
    check_owner(results, ["config.yaml"])  # nothing recorded yet: any run may start
    claim(results, ["config.yaml"])
    assert json.loads((results / "configfiles.json").read_text()) == {
        "configfiles": [str(Path("config.yaml"))]}
    check_owner(results, ["config.yaml", "config.yaml"])  # the same files: fine
    with pytest.raises(OwnershipError) as err:
        check_owner(results, ["config.yaml", "config/my_concepts.yaml"])
    msg = str(err.value)
    assert "keeps experiment: demo" in msg and "config/my_concepts.yaml" in msg
    assert "configfiles.json" in msg  # the deliberate way to take it over
    claim(results, ["config/other.yaml"])  # the first owner stays
    with pytest.raises(OwnershipError):
        check_owner(results, ["config/other.yaml"])


def test_dry_run_check_decodes_an_unchanged_image_once(tmp_path, monkeypatch):
    """A big photo is decoded at the first DAG build only; a changed file (size or mtime) is
    decoded again, so a corrupted replacement is still caught."""
    import os

    monkeypatch.chdir(tmp_path)  # the record lives in ./.snakemake/, as in a workflow run
    cat = _photos(tmp_path / "data" / "local" / "my_cat")
    assert _scaffold(cat, "--class", "cat").returncode == 0
    cfg = copy.deepcopy(TINY)
    cfg["data"].update(root=str(tmp_path / "data"), demo=False, subjects=["local/my_cat"],
                       styles=[])
    cfg["report"]["claims"] = None
    load_setup(cfg, decode=True)
    assert (tmp_path / ".snakemake" / "dcobench-validated-images.json").is_file()
    image = cat / "01.jpg"
    stat = image.stat()
    image.write_bytes(b"x" * stat.st_size)  # garbage of the same size, same mtime: not decoded
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    load_setup(cfg, decode=True)
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # changed: decoded again
    with pytest.raises(ConfigError, match="01.jpg"):
        load_setup(cfg, decode=True)
