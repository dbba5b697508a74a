"""One guide type (`sample.guides.Guide`) and one parser of guide names (`Guide.parse`): the
sampler's GuideSpec holds a Guide, and the claims read ω_rg through the same parser."""

import pytest

from dcobench.analysis.claims import omega
from dcobench.sample.denoise import GuideSpec
from dcobench.sample.guides import Guide


def test_guidespec_holds_the_one_guide_type():
    spec = GuideSpec("rg2.5", 7.5, "theta")
    assert spec.guide == Guide("rg", 2.5) and (spec.kind, spec.w_rg) == ("rg", 2.5)
    assert GuideSpec(Guide("rg", 2.5), 7.5, "theta") == spec
    assert GuideSpec("cfg", 7.5).guide == Guide("cfg") and GuideSpec("cfg").lora is None
    with pytest.raises(ValueError, match="needs a LoRA adapter"):
        GuideSpec("rg3")
    with pytest.raises(ValueError, match="bad guide name"):  # Guide.parse's message
        GuideSpec("rg")
    with pytest.raises(ValueError, match="ω_rg > 0"):  # Guide's own check
        GuideSpec("rg0", 7.5, "theta")


def test_claims_read_omega_with_guide_parse():
    assert omega("rg3") == 3.0 and omega("rg2.5") == 2.5
    with pytest.raises(ValueError, match="slope tests need rg"):
        omega("cfg")
    with pytest.raises(ValueError, match="bad guide name"):
        omega("rgx")


def test_the_schema_checks_guide_names_with_guides_own_pattern():
    from dcobench.sample.guides import NAME_PATTERN
    from dcobench.spec.schema import config_schema

    assert config_schema()["definitions"]["guide"]["pattern"] == NAME_PATTERN
