"""The one (θ caption, φ caption) rule and its callers: training images, sampled prompts,
the analyses' / ZipLoRA's reference captions (model folders with and without learned tokens)."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from dcobench.data.captions import caption_pair, image_captions, plain_caption
from dcobench.data.concept import Concept, load_concept
from dcobench.models.finetuned import model_captions
from dcobench.sample.grid import SampleOptions, model_prompts, prompt_list

DOG = Concept("dog", Path("dog"), "subject", "dog", True, "<dog>",
              {"00.png": "a <dog> on a sofa", "01.png": "a <dog> in snow"})
INK = Concept("ink", Path("ink"), "style", "ink wash", False, "<ink>", {"00.png": "a <ink> cat"})


@pytest.mark.parametrize(("mode", "learned", "phi"), [
    ("comprehensive", {"<dog>", "<ink>"}, "a dog in ink wash style"),  # both tokens learned
    ("comprehensive", {"<dog>"}, "a dog in <ink> style"),  # a style trained without a token
    ("comprehensive", set(), "a <dog> in <ink> style"),  # textual_inversion: false
    ("compact", set(), "a sks dog in sks ink wash style"),
])
def test_caption_pair(mode, learned, phi):
    theta = "a sks dog in sks ink wash style" if mode == "compact" else "a <dog> in <ink> style"
    assert caption_pair("a <dog> in <ink> style", [DOG, INK], mode, learned) == (theta, phi)
    assert plain_caption("a <dog> in <ink> style", [DOG, INK]) == "a dog in ink wash style"


def test_image_captions_three_modes():
    assert image_captions(DOG, "comprehensive", True) == (
        ["a <dog> on a sofa", "a <dog> in snow"], ["a dog on a sofa", "a dog in snow"])
    assert image_captions(DOG, "comprehensive", False) == (
        ["a <dog> on a sofa", "a <dog> in snow"], ["a <dog> on a sofa", "a <dog> in snow"])
    assert image_captions(DOG, "compact", False) == (["a photo of sks dog"] * 2,
                                                     ["a photo of sks dog"] * 2)
    with pytest.raises(ValueError, match="caption mode"):
        image_captions(DOG, "short", False)


def _model_folder(root: Path, captions: str, tokens: list[str]) -> Path:
    """A trained model's folder as the callers read it: manifest + one embeddings file per token."""
    root.mkdir()
    (root / "manifest.json").write_text(json.dumps({"stage": "train",
                                                    "options": {"captions": captions}}))
    for i, token in enumerate(tokens):
        save_file({"clip_l": torch.zeros(1, 4)}, str(root / f"learned_embeds.{i}.safetensors"),
                  metadata={"token": token})
    return root


@pytest.mark.parametrize(("captions", "learned", "theta", "phi", "prompt"), [
    ("comprehensive", True, "a <dog> on a sofa", "a dog on a sofa",
     ("a <toy_robot> in the jungle", "a robot in the jungle")),
    ("comprehensive", False, "a <dog> on a sofa", "a <dog> on a sofa",  # textual_inversion: false
     ("a <toy_robot> in the jungle", "a <toy_robot> in the jungle")),
    ("compact", False, "a photo of sks dog", "a photo of sks dog",
     ("a sks robot in the jungle", "a sks robot in the jungle")),
])
def test_model_folders_read_the_same_rule(tmp_path, demo_root, captions, learned, theta, phi,
                                          prompt):
    """Analyses / ZipLoRA (model_captions) and sampling (model_prompts) follow the model folder:
    its manifest's caption mode and the tokens it learned."""
    robot = load_concept(demo_root / "toy_robot")
    tokens = [DOG.token, robot.token] if learned else []
    model = _model_folder(tmp_path / "model", captions, tokens)
    thetas, phis = model_captions(DOG, model)
    assert (thetas[0], phis[0]) == (theta, phi)
    opts = SampleOptions(out_dir=tmp_path / "out", model_dir=model,
                         subject_dir=demo_root / "toy_robot", num_prompts=1, guides=("cfg",))
    filled = prompt_list(opts)
    assert filled[0].theta == "a <toy_robot> in the jungle"
    assert model_prompts(opts, filled) == [prompt]
    pretrained = SampleOptions(out_dir=tmp_path / "out", subject_dir=demo_root / "toy_robot",
                               num_prompts=1, guides=("cfg",))
    assert model_prompts(pretrained, filled) == [(filled[0].base, filled[0].base)]
