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


@pytest.mark.parametrize(("mode", "learned", "theta", "phi"), [
    ("comprehensive", {"<dog>", "<ink>"}, "a <dog> in <ink> style", "a dog in ink wash style"),
    # the usual pair: a subject with a token, a style without one (§5.2)
    ("comprehensive", {"<dog>"}, "a <dog> in ink wash style", "a dog in ink wash style"),
    # no token learned: the class words for θ and φ, never a literal "<dog>"
    ("comprehensive", set(), "a dog in ink wash style", "a dog in ink wash style"),
    ("compact", {"<dog>"}, "a <dog> in ink wash style", "a dog in ink wash style"),
    # rare token: the subject is "sks dog" for both; a style keeps its words
    ("rare_token", set(), "a sks dog in ink wash style", "a sks dog in ink wash style"),
])
def test_caption_pair(mode, learned, theta, phi):
    assert caption_pair("a <dog> in <ink> style", [DOG, INK], mode, learned) == (theta, phi)
    assert plain_caption("a <dog> in <ink> style", [DOG, INK]) == "a dog in ink wash style"


def test_image_captions_per_mode():
    assert image_captions(DOG, "comprehensive", True) == (
        ["a <dog> on a sofa", "a <dog> in snow"], ["a dog on a sofa", "a dog in snow"])
    assert image_captions(DOG, "comprehensive", False) == (
        ["a dog on a sofa", "a dog in snow"], ["a dog on a sofa", "a dog in snow"])
    assert image_captions(DOG, "compact", True) == (["a photo of <dog>"] * 2,
                                                    ["a photo of dog"] * 2)
    assert image_captions(DOG, "rare_token", False) == (["a photo of sks dog"] * 2,
                                                        ["a photo of sks dog"] * 2)
    assert image_captions(INK, "comprehensive", False) == (["a ink wash cat"], ["a ink wash cat"])
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
    ("comprehensive", False, "a dog on a sofa", "a dog on a sofa",  # textual_inversion: false
     ("a robot in the jungle", "a robot in the jungle")),
    ("compact", True, "a photo of <dog>", "a photo of dog",
     ("a <toy_robot> in the jungle", "a robot in the jungle")),
    ("rare_token", False, "a photo of sks dog", "a photo of sks dog",
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


def _paper_variants():
    import yaml

    from dcobench.train.variants import parse_variants

    cfg = yaml.safe_load((Path(__file__).resolve().parents[2] / "config" / "paper.yaml").read_text())
    variants = parse_variants(cfg, errors := [])
    assert not errors
    return cfg, variants


@pytest.mark.parametrize("kind", ["subject", "style"])
def test_rg_phi_text_is_the_training_phi_text_for_every_variant(tmp_path, demo_root, kind):
    """Eq. 13's c: reward guidance's φ rows read the text φ read in training (the reference pass
    of Alg. 1), for every variant of the paper config: given a training caption as the prompt,
    sampling builds exactly the (θ, φ) pair training built. The model folder is what training
    writes: its caption mode in the manifest, an embeddings file iff it learned the token."""
    from dcobench.config import train_options
    from dcobench.data.captions import reference_caption
    from dcobench.data.prompts import Prompt
    from dcobench.train.options import TrainOptions

    cfg, variants = _paper_variants()
    folder = demo_root / ("toy_robot" if kind == "subject" else "mosaic_style")
    concept = load_concept(folder)
    seen = set()
    for name, variant in variants.items():
        fields = train_options(cfg, kind, name)
        opts = TrainOptions(concept_dir=folder, out_dir=tmp_path, objective=variant.objective,
                            **fields)
        assert not (kind == "style" and opts.learns_token), name  # §5.2
        model = _model_folder(tmp_path / name, opts.captions,
                              [concept.token] if opts.learns_token else [])
        thetas, phis = image_captions(concept, opts.captions, opts.learns_token)
        caption = reference_caption(concept, concept.images[0], opts.captions)
        sample = SampleOptions(out_dir=tmp_path / "out", model_dir=model, guides=("rg3",),
                               **{f"{kind}_dir": folder})
        prompt = Prompt(0, caption, plain_caption(caption, [concept]))
        assert model_prompts(sample, [prompt]) == [(thetas[0], phis[0])], name
        seen.add((opts.captions, opts.learns_token))
    expected = ({("comprehensive", True), ("compact", True), ("rare_token", False)}
                if kind == "subject" else {(m, False) for m in ("comprehensive", "compact", "rare_token")})
    assert seen == expected  # every caption kind of the paper config was checked
