"""Shared fixtures: tiny presets built once per session, demo concepts drawn once."""

import os

import pytest


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory):
    path = tmp_path_factory.mktemp("models")
    old = os.environ.get("DCOBENCH_CACHE")
    os.environ["DCOBENCH_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("DCOBENCH_CACHE", None)
    else:
        os.environ["DCOBENCH_CACHE"] = old


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory):
    from dcobench.data.demo import write_demo_concepts

    root = tmp_path_factory.mktemp("data")
    write_demo_concepts(root)
    return root


@pytest.fixture(scope="session")
def trained_dco(model_cache, demo_root, tmp_path_factory):
    """A DCO run of 6 steps on the toy robot (LoRA + learned token), kept as a Trainer."""
    from dcobench.train.options import TrainOptions
    from dcobench.train.trainer import Trainer

    out = tmp_path_factory.mktemp("dco")
    opts = TrainOptions(concept_dir=demo_root / "toy_robot", out_dir=out, objective="dco",
                        steps=6, rank=4, lr=1e-2, ti_lr=1e-2, resolution=64)
    trainer = Trainer(opts)
    before = {k: v.detach().clone() for k, v in trainer.pipe.unet.state_dict().items()}
    embeds_before = [e.get_input_embeddings().weight.detach().clone()
                     for e in (trainer.pipe.text_encoder, trainer.pipe.text_encoder_2)]
    for _ in range(opts.steps):
        trainer.step()
    trainer.save(out)
    return trainer, before, embeds_before, out
