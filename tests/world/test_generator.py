"""The generator: determinism, captions <-> attributes, held-out compositions, vocabulary."""

import numpy as np
import pytest

from dcobench.world.render import SIZE, render
from dcobench.world.scenes import draw_scene, scenes
from dcobench.world.vocab import (
    BG_COLORS,
    CLASSES,
    COLORS,
    HELD_OUT_PAIRS,
    MEDIA,
    SIZES,
    STYLES,
    TEXTURES,
    Obj,
    Scene,
    caption,
    parse_caption,
)


def test_same_seed_same_scene_and_pixels_other_seed_differs():
    a = [draw_scene(0, "oracle", i) for i in range(20)]
    assert a == [draw_scene(0, "oracle", i) for i in range(20)]
    assert all(np.array_equal(render(s), render(t)) for s, t in zip(a, scenes(0, "oracle", 20), strict=True))
    assert a != [draw_scene(1, "oracle", i) for i in range(20)]
    assert render(a[0]).shape == (SIZE, SIZE, 3) and render(a[0]).dtype == np.uint8


def test_caption_parses_back_to_the_scene_attributes():
    for i in range(300):
        s = draw_scene(3, "oracle", i)
        req = parse_caption(caption(s))
        assert (req.medium, req.bg_color, req.texture) == (s.medium, s.bg_color, s.texture)
        assert req.style == (None if s.style == "none" else s.style)
        want = [(o.cls, o.color, o.size, o.position) for o in s.objects]
        assert req.objects == want


def test_caption_text_example():
    s = Scene("photo", "gray", "striped", (Obj("star", "red", "small", "left"),
                                           Obj("circle", "blue", "large", "right")))
    assert caption(s) == ("a photo of a small red star on the left and a large blue circle on "
                          "the right, on a gray striped background")
    subj = Scene("photo", "navy", "plain", (Obj("star", None, "large", "center", subject=1),))
    assert caption(subj, tokens={1: "<split_star>"}) == (
        "a photo of a large <split_star> in the center, on a navy plain background")


def test_held_out_pairs_never_in_pretraining_and_always_in_heldout_split():
    assert len(HELD_OUT_PAIRS) == len(CLASSES)  # one held-out colour per class
    for s in scenes(0, "pretrain", 3000):
        assert not s.held_out and s.style == "none" and all(o.subject == 0 for o in s.objects)
    assert all(s.held_out for s in scenes(0, "heldout", 300))
    pairs = {(o.cls, o.color) for s in scenes(0, "pretrain", 3000) for o in s.objects}
    assert len(pairs) == len(CLASSES) * len(COLORS) - len(HELD_OUT_PAIRS)  # everything else seen


def test_scene_rejects_bad_attributes():
    with pytest.raises(ValueError, match="purple-ish"):
        Scene("photo", "gray", "plain", (Obj("star", "purple-ish", "small", "left"),))
    with pytest.raises(ValueError, match="different positions"):
        Scene("photo", "gray", "plain", (Obj("star", "red", "small", "left"),) * 2)
    with pytest.raises(ValueError, match="unknown split"):
        draw_scene(0, "train", 0)


def test_every_world_word_is_one_clip_token():
    from dcobench.world.models import tokenizers

    tok = tokenizers()[0]
    assert len(tok) == 49408  # the full CLIP BPE
    words = (CLASSES + COLORS + SIZES + BG_COLORS + TEXTURES + MEDIA + STYLES[1:]
             + ("left", "right", "center", "background", "style"))
    split = {w: tok.tokenize(w) for w in words}
    assert all(len(t) == 1 for t in split.values()), {w: t for w, t in split.items() if len(t) > 1}


def test_incomplete_captions_drop_only_colour_about_a_quarter_of_the_time():
    """world-sdxl's pretraining captions: deterministic; an object's colour word is left out
    with probability 0.25 and nothing else changes; the caption still parses."""
    from dcobench.world.data import incomplete_captions
    from dcobench.world.scenes import scenes as draw
    from dcobench.world.vocab import caption, parse_caption

    items = draw(0, "pretrain", 2000)
    caps = incomplete_captions(items, seed=0)
    assert caps == incomplete_captions(items, seed=0)
    dropped = total = 0
    for scene, text in zip(items, caps, strict=True):
        req = parse_caption(text)
        full = parse_caption(caption(scene))
        assert (req.medium, req.bg_color, req.texture) == (full.medium, full.bg_color, full.texture)
        for (cls, color, size, pos), (fcls, fcolor, fsize, fpos) in zip(req.objects, full.objects,
                                                                         strict=True):
            assert (cls, size, pos) == (fcls, fsize, fpos)
            assert color in (None, fcolor)
            total += 1
            dropped += color is None
    assert 0.22 < dropped / total < 0.28


def test_patterned_zero_draws_the_scenes_of_the_committed_world():
    """The committed presets were pretrained on these draws: the patterned option must not move
    the random stream when it is off (fingerprint of 600 scenes' captions, seeds, subjects)."""
    import hashlib

    h = hashlib.sha256()
    for split in ("pretrain", "heldout", "oracle"):
        for s in scenes(0, split, 200):
            h.update(f"{caption(s)}|{s.seed}|{[o.subject for o in s.objects]}".encode())
    assert h.hexdigest()[:16] == "6b7b8f496515f63d"
    assert not any(o.look for s in scenes(0, "oracle", 500) for o in s.objects)


def test_patterned_objects_take_no_subject_kind_and_are_captioned_by_class():
    from dcobench.world.oracle import HEAD_INDEX, IGNORE, labels
    from dcobench.world.vocab import SUBJECT_KINDS

    objs = [(s, o) for s in scenes(0, "pretrain", 2000, patterned=0.25) for o in s.objects]
    patterned = [(s, o) for s, o in objs if o.look]
    assert 0.2 < len(patterned) / len(objs) < 0.3
    for s, o in patterned:
        pattern, c1, c2 = o.look
        assert (o.cls, pattern) not in SUBJECT_KINDS and c1 != c2 and o.subject == 0
        assert (o.cls, c1) not in HELD_OUT_PAIRS and (o.cls, c2) not in HELD_OUT_PAIRS
        assert (o.cls, None, o.size, o.position) in parse_caption(caption(s)).objects
        lab = labels(s)
        assert lab[HEAD_INDEX[f"{o.position}.color"]] == IGNORE
        assert lab[HEAD_INDEX[f"{o.position}.subject"]] == 0
    s, o = patterned[0]  # two colours in the render, where a plain object has one
    plain = Scene(s.medium, s.bg_color, s.texture, (Obj(o.cls, o.look[1], o.size, o.position),),
                  seed=s.seed)
    alone = Scene(s.medium, s.bg_color, s.texture, (o,), seed=s.seed)
    assert not np.array_equal(render(plain), render(alone))
    assert not any(o.look for s in scenes(0, "heldout", 300, patterned=0.25) for o in s.objects)
    oracle = [o for s in scenes(0, "oracle", 1000, patterned=0.25) for o in s.objects]
    assert any(o.look for o in oracle) and any(o.subject for o in oracle)


def test_bad_patterned_values_are_refused():
    with pytest.raises(ValueError, match="no colour"):
        Scene("photo", "gray", "plain", (Obj("star", "red", "large", "center",
                                             look=("dot", "red", "blue")),))
    with pytest.raises(ValueError, match="not one of"):
        Scene("photo", "gray", "plain", (Obj("star", None, "large", "center",
                                             look=("zigzag", "red", "blue")),))
    with pytest.raises(ValueError, match="fraction"):
        draw_scene(0, "pretrain", 0, patterned=1.0)
