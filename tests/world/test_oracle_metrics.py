"""Oracle metrics on hand-made probability vectors (one-hot readings of known scenes)."""

import math

import pytest
import torch

from dcobench.score.metrics import SCORERS
from dcobench.score.scorers import metric_from_embeddings
from dcobench.world.oracle import (
    IGNORE,
    OFFSETS,
    WIDTHS,
    Oracle,
    encode_request,
    labels,
    oracle_loss,
    prompt_accuracy,
    style_probability,
    subject_probability,
)
from dcobench.world.vocab import Obj, Scene, caption, parse_caption


def one_hot(scene: Scene) -> torch.Tensor:
    """The probability vector of a perfect oracle reading `scene`."""
    probs = torch.zeros(sum(WIDTHS))
    for i, t in enumerate(labels(scene)):
        probs[OFFSETS[i] + (0 if t == IGNORE else t)] = 1.0
    return probs


SCENE = Scene("photo", "gray", "striped", (Obj("star", "red", "small", "left"),
                                           Obj("circle", "blue", "large", "right")))


def test_perfect_reading_scores_one_and_each_wrong_attribute_costs_one_share():
    req = encode_request(parse_caption(caption(SCENE)))[None]
    assert prompt_accuracy(one_hot(SCENE)[None], req).item() == 1.0
    # asked: medium, bg, texture + 2 objects x (position, class, colour, size) = 11
    wrong = Scene("drawing", "gray", "striped", (Obj("heart", "red", "small", "left"),
                                                 Obj("circle", "blue", "large", "right")))
    assert prompt_accuracy(one_hot(wrong)[None], req).item() == pytest.approx(9 / 11)
    moved = Scene("photo", "gray", "striped", (Obj("star", "red", "small", "center"),
                                               Obj("circle", "blue", "large", "right")))
    # the left object is missing: its position, class, colour, size are all wrong
    assert prompt_accuracy(one_hot(moved)[None], req).item() == pytest.approx(7 / 11)


def test_unasked_attributes_do_not_count():
    req = encode_request(parse_caption("a photo of a star"))[None]  # 2 attributes asked
    other = Scene("photo", "navy", "dotted", (Obj("star", "green", "large", "center"),))
    assert prompt_accuracy(one_hot(other)[None], req).item() == 1.0
    assert math.isnan(prompt_accuracy(one_hot(other)[None],
                                      encode_request(parse_caption("hello"))[None]).item())


def test_subject_and_style_probabilities_follow_the_references():
    s3 = Scene("photo", "gray", "plain", (Obj("heart", None, "large", "center", subject=4),))
    refs = torch.stack([one_hot(s3)] * 3)
    assert subject_probability(torch.stack([one_hot(s3), one_hot(SCENE)]), refs).tolist() == [1, 0]
    wavy = Scene("photo", "gray", "plain", SCENE.objects, style="wavy")
    probs = torch.stack([one_hot(wavy), one_hot(SCENE)])
    assert style_probability(probs, torch.stack([one_hot(wavy)])).tolist() == [1, 0]


def test_scorers_are_registered_and_route_to_the_oracle():
    assert {"prompt_acc", "subject_acc", "style_acc"} <= set(SCORERS.names())
    gen = one_hot(SCENE)[None]
    txt = encode_request(parse_caption(caption(SCENE)))[None]
    assert metric_from_embeddings("prompt_acc", gen, txt=txt).item() == 1.0
    with pytest.raises(ValueError, match="reference images"):
        metric_from_embeddings("subject_acc", gen)


def test_oracle_loss_is_zero_only_for_confident_right_answers():
    model = Oracle(width=8, hidden=16)
    x = torch.zeros(2, 3, 32, 32)
    target = torch.tensor([labels(SCENE)] * 2)
    assert model(x).shape == (2, sum(WIDTHS))
    assert oracle_loss(model(x), target).item() > 1.0
