"""Class priors are cached by (model, class prompt, count, seed, steps, cfg, ...)."""

import pytest

from dcobench.config import prior_key

SETTINGS = {"model": "tiny-sdxl", "prompt": "a photo of a {class}", "count": 100, "seed": 0,
            "steps": 50, "cfg": 7.5, "resolution": 1024, "scheduler": "ddim", "batch_size": 4}


def test_same_class_and_settings_share_one_folder():
    assert prior_key("dog", dict(SETTINGS)) == prior_key("dog", dict(reversed(SETTINGS.items())))
    assert prior_key("Stuffed Animal", SETTINGS).startswith("stuffed_animal-")
    assert prior_key("dog", SETTINGS) != prior_key("cat", SETTINGS)


@pytest.mark.parametrize("key,value", [("model", "stabilityai/stable-diffusion-xl-base-1.0"),
                                       ("prompt", "a {class}"), ("count", 50), ("seed", 1),
                                       ("steps", 25), ("cfg", 5.0)])
def test_any_setting_that_changes_the_images_changes_the_folder(key, value):
    assert prior_key("dog", {**SETTINGS, key: value}) != prior_key("dog", SETTINGS)
