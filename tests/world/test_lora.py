"""DB and DCO LoRAs trained on a world subject load in stock diffusers and change the image."""

import pytest
import torch

from dcobench.models import adapters, text


def _stock_image(world_root, out=None, token=None, prompt="", seed=0):
    from diffusers import StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline.from_pretrained(str(world_root / "world-sdxl"))
    pipe.set_progress_bar_config(disable=True)
    if out is not None:
        pipe.load_lora_weights(str(out), weight_name=adapters.LORA_WEIGHT_NAME)
        text.load_learned_embeds(pipe, out / text.EMBEDS_NAME, token)  # load_textual_inversion
    g = torch.Generator().manual_seed(seed)
    return pipe(prompt, num_inference_steps=4, generator=g, output_type="pt").images


@pytest.mark.parametrize("objective", ["db", "dco"])
def test_world_lora_loads_in_stock_pipeline_and_changes_the_image(objective, world_root,
                                                                  world_concepts, tmp_path):
    from dcobench.data.concept import load_concept
    from dcobench.train.options import TrainOptions
    from dcobench.train.trainer import train

    concept = load_concept(world_concepts[0])
    out = train(TrainOptions(concept_dir=concept.root, out_dir=tmp_path / objective, objective=objective,
                             base_model="world-sdxl", steps=3, rank=4, lr=1e-2, ti_lr=1e-2,
                             resolution=32, log_every=1, resume_every=100))
    prompt = concept.captions[concept.images[0].name]
    base = _stock_image(world_root, prompt=concept.base_caption(prompt))
    tuned = _stock_image(world_root, out, concept.token, prompt)
    assert base.shape == tuned.shape == (1, 3, 32, 32)
    assert (tuned - base).abs().mean() > 1e-3
