"""World concepts are ordinary concept folders: valid, deterministic, captions from the truth."""

import json
from argparse import Namespace

import numpy as np
import pytest

from dcobench.data.concept import validate_concept
from dcobench.world import concepts
from dcobench.world.concepts import (
    MIN_CONTRAST,
    PATTERN_ECHOES,
    TRUTH_FILE,
    subject_scenes,
    write_world_concepts,
)
from dcobench.world.render import BG_RGB, background_rgbs, render
from dcobench.world.scenes import draw_scene
from dcobench.world.vocab import SUBJECTS, Obj, Scene, parse_caption


def test_concept_folders_validate_and_are_deterministic(tmp_path):
    folders = write_world_concepts(tmp_path / "a")
    again = write_world_concepts(tmp_path / "b")
    concepts = [validate_concept(f) for f in folders]
    assert sum(c.kind == "subject" for c in concepts) >= 8
    assert sum(c.kind == "style" for c in concepts) >= 4
    for f, g in zip(folders, again, strict=True):
        for p in sorted(f.iterdir()):
            assert p.read_bytes() == (g / p.name).read_bytes(), p


def test_one_concept_drawn_alone_has_the_bytes_it_has_among_all(tmp_path):
    """The workflow draws one world concept per job: adding a concept to a config must not
    redraw (and so rerun) the others, and a concept's files must not depend on which others
    were drawn with it."""
    everything = {f.name: f for f in write_world_concepts(tmp_path / "all")}
    for name in ("striped_star", "wavy_style"):
        (alone,) = write_world_concepts(tmp_path / name, names=[name])
        assert sorted(p.name for p in alone.iterdir()) == sorted(p.name for p in everything[name].iterdir())
        for p in alone.iterdir():
            assert p.read_bytes() == (everything[name] / p.name).read_bytes(), p
    assert sorted(p.name for p in (tmp_path / "striped_star").iterdir()) == ["striped_star"]
    with pytest.raises(ValueError, match="unknown world concept"):
        write_world_concepts(tmp_path / "x", names=["no_such_thing"])


def test_captions_describe_the_truth_with_the_token(tmp_path):
    for folder in write_world_concepts(tmp_path):
        c = validate_concept(folder)
        truth = json.loads((folder / TRUTH_FILE).read_text())
        assert 4 <= len(c.images) <= 6 and set(truth) == set(c.captions)
        for name, cap in c.captions.items():
            scene = truth[name]
            req = parse_caption(c.base_caption(cap))
            assert (req.bg_color, req.texture) == (scene["bg_color"], scene["texture"])
            if c.kind == "subject":  # the token stands where the class noun stands
                assert req.objects == [(c.class_noun, None, "large", "center")]
            else:
                assert req.style == c.class_noun == scene["style"]


def test_subject_references_are_narrow_and_never_in_pretraining(tmp_path):
    for folder in write_world_concepts(tmp_path)[:8]:
        truth = json.loads((folder / TRUTH_FILE).read_text()).values()
        assert len({(s["bg_color"], s["texture"]) for s in truth}) == 2
    assert all(o.subject == 0 for i in range(2000) for o in draw_scene(0, "pretrain", i).objects)


def test_one_context_puts_every_reference_on_one_background(tmp_path):
    for folder in write_world_concepts(tmp_path, contexts=1)[:8]:
        truth = json.loads((folder / TRUTH_FILE).read_text()).values()
        assert len({(s["bg_color"], s["texture"]) for s in truth}) == 1
        assert len(truth) == 5
    with pytest.raises(ValueError, match="contexts"):
        subject_scenes(0, 0, contexts=0)


def test_references_keep_the_subject_apart_from_its_background():
    """Every reference background is painted at least MIN_CONTRAST from both subject colours
    and does not repeat the subject's pattern; navy (under the ringed circle's indigo) and a
    checked ground (under the quartered square) are excluded where they were drawn before."""
    for k, look in enumerate(SUBJECTS):
        for contexts in (1, 2, 5):
            for scene in subject_scenes(k, seed=0, contexts=contexts):
                assert scene.texture != PATTERN_ECHOES.get(look.pattern)
                gap = min(np.linalg.norm(np.subtract(a, b))
                          for a in background_rgbs(scene.bg_color, scene.texture) for b in look.colors)
                assert gap >= MIN_CONTRAST, (look.name, scene.bg_color, scene.texture, gap)
    ringed = [s.bg_color for seed in range(10) for s in subject_scenes(1, seed)]
    quartered = [s.texture for seed in range(10) for s in subject_scenes(2, seed)]
    assert "navy" not in ringed and "checked" not in quartered


def test_background_rgbs_are_the_rendered_colours():
    star = (Obj("star", "red", "small", "center"),)
    for bg in BG_RGB:
        plain = render(Scene("photo", bg, "plain", star))
        assert tuple(plain[0, 0]) == background_rgbs(bg, "plain")[0]
        striped = render(Scene("photo", bg, "striped", star))
        assert {tuple(px) for px in striped[:4, 0]} == set(background_rgbs(bg, "striped"))


def test_too_few_readable_backgrounds_is_an_error(monkeypatch):
    monkeypatch.setattr(concepts, "MIN_CONTRAST", 1000.0)
    with pytest.raises(ValueError, match="readable backgrounds"):
        subject_scenes(0, 0)


def test_prepare_validate_accepts_world_concepts(tmp_path):
    from dcobench.cli.prepare import run

    folders = write_world_concepts(tmp_path / "c")
    out = tmp_path / "prep" / "summary.json"
    run(Namespace(action="validate", concepts=[str(f) for f in folders], models="{}",
                  out=str(out), root=None, names="", concept=None, sources="{}", parent=None,
                  step=None, variant="", tsv=None, resolution=32))  # the world trains at 32
    summary = json.loads(out.read_text())
    assert len(summary["concepts"]) == len(folders)
