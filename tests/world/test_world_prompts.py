"""World prompt sets: generated from each concept's truth, novel means never shown by its
references, and config/world.yaml plans the paper's experiments on them."""

from pathlib import Path

import pytest
import yaml

from dcobench.config import load_setup
from dcobench.data.prompts import build_prompts
from dcobench.world.concepts import write_world_concepts
from dcobench.world.prompts import WORLD_SETS, read_truth, world_templates
from dcobench.world.vocab import parse_caption

REPO = Path(__file__).resolve().parents[2]
SUBJECTS = ["split_star", "ringed_circle", "striped_heart", "banded_cross"]


@pytest.fixture(scope="module")
def concepts(tmp_path_factory):
    root = tmp_path_factory.mktemp("world_concepts")
    write_world_concepts(root, seed=0)
    return root


def _scene_key(text: str):
    req = parse_caption(text.replace("{subject}", "thing"))
    return req.medium, req.bg_color, req.texture, tuple(req.objects)


def test_context_prompts_are_the_references_own_captions(concepts):
    for name in SUBJECTS:
        folder = concepts / name
        caps = yaml.safe_load((folder / "concept.yaml").read_text())["captions"].values()
        token = yaml.safe_load((folder / "concept.yaml").read_text())["token"]
        ctx = world_templates("world_context", {"subject": folder})
        assert sorted(set(c.replace(token, "{subject}") for c in caps)) == sorted(ctx)


def test_novel_prompts_change_what_the_references_never_showed(concepts):
    for name in SUBJECTS:
        folder = concepts / name
        refs = read_truth(folder)
        seen = {_scene_key(t) for t in world_templates("world_context", {"subject": folder})}
        ref_bgs = {(s.bg_color, s.texture) for s in refs}
        novel = world_templates("world_novel", {"subject": folder})
        assert len(novel) >= 8 and len(set(novel)) == len(novel)
        assert not seen & {_scene_key(t) for t in novel}
        kinds = {"background": 0, "position": 0, "size": 0, "second object": 0}
        for t in novel:
            req = parse_caption(t.replace("{subject}", "thing"))
            kinds["background"] += (req.bg_color, req.texture) not in ref_bgs
            kinds["second object"] += len(req.objects) == 2
            kinds["position"] += any(o[3] != "center" for o in req.objects)
            kinds["size"] += any(o[2] == "small" and o[0] is None for o in req.objects)
        assert all(kinds.values()), kinds
        assert all(t.startswith("a drawing of") for t in world_templates("world_drawing", {"subject": folder}))


def test_style_and_merge_sets(concepts):
    style = concepts / "wavy_style"
    content = world_templates("world_content", {"style": style})
    ref_caps = set(yaml.safe_load((style / "concept.yaml").read_text())["captions"].values())
    assert len(content) == 10 and all(t.endswith("in {style} style") for t in content)
    assert not {t.replace("{style}", "<wavy_style>") for t in content} & ref_caps
    merge = world_templates("world_merge", {"subject": concepts / "split_star", "style": style})
    assert merge and all("{subject}" in t and t.endswith(", in {style} style") for t in merge)


def test_world_sets_fill_through_build_prompts(concepts):
    folder = concepts / "split_star"
    prompts = build_prompts("subject", ["world_context", "world_novel"], False, None,
                            {"subject": "<split_star>"}, {"subject": "star"}, {"subject": folder})
    assert [p.index for p in prompts] == list(range(len(prompts)))
    assert {p.prompt_set for p in prompts} == {"world_context", "world_novel"}
    assert all("<split_star>" in p.theta and "star" in p.base and "<" not in p.base for p in prompts)
    with pytest.raises(KeyError, match="needs a subject concept folder"):
        build_prompts("subject", ["world_novel"], False, None, {}, {}, {})
    with pytest.raises(FileNotFoundError, match="not a world concept folder"):
        world_templates("world_novel", {"subject": REPO / "data"})


def test_world_config_plans_the_paper_experiments(tmp_path):
    config = yaml.safe_load((REPO / "config" / "world.yaml").read_text())
    config["data"]["root"] = str(tmp_path / "data")  # world concepts need not exist yet
    setup = load_setup(config)
    assert all(ref.world for ref in setup.concepts.values()) and len(setup.concepts) == 12
    trained = {v for _, _, v in setup.plan.models}
    assert {"db_rare", "db", "dbpp", "dco", "db_es", "dbpp_l05", "db_compact", "dco_compact",
            "dco_b05", "dco_b2"} <= trained
    assert {m for _, _, m in setup.plan.merges} >= {"db-arithmetic", "db-ziplora", "dco-arithmetic"}
    assert set(config["sample"]["prompt_sets"]["subject"]) <= set(WORLD_SETS)


def test_codec_ceiling_reads_references_and_reconstructions(concepts, tmp_path):
    import shutil

    from dcobench.world.validity import codec_ceiling

    for name in ("split_star", "wavy_style"):
        shutil.copytree(concepts / name, tmp_path / name)
    table = codec_ceiling(tmp_path).set_index("concept")
    assert list(table["metric"]) == ["subject_acc", "style_acc"]
    assert (table["references"] > 0.95).all()  # the oracle reads the true references
    assert table["reconstructions"].between(0, 1).all() and (table["psnr_db"] > 10).all()
    with pytest.raises(FileNotFoundError, match="no world concept folders"):
        codec_ceiling(tmp_path / "empty")


def test_validity_table_applies_both_gates():
    import pandas as pd

    from dcobench.world.validity import validity_table

    def rows(variant, concept, ctx_subject, novel_prompt):
        return [{"variant": variant, "concept": concept, "prompt_set": "world_context",
                 "metric": "subject_acc", "value": ctx_subject},
                {"variant": variant, "concept": concept, "prompt_set": "world_novel",
                 "metric": "prompt_acc", "value": novel_prompt}]

    scores = pd.DataFrame(rows("pretrained", "a", 0.1, 0.9) + rows("pretrained", "b", 0.1, 0.7)
                          + rows("good", "a", 0.9, 0.7) + rows("good", "b", 0.8, 0.5)
                          + rows("weak", "a", 0.9, 0.85) + rows("weak", "b", 0.9, 0.6)
                          + rows("only_c", "c", 1.0, 0.0))
    table = validity_table(scores).set_index("variant")
    assert table.loc["good", "prompt_acc_drop"] == pytest.approx(0.2)
    assert table.loc["good", "db_subject_acc_world_context"] == pytest.approx(0.85)
    assert table.loc["good", "db_subject_acc_world_context_min"] == pytest.approx(0.8)
    assert bool(table.loc["good", "valid"]) and not bool(table.loc["weak", "valid"])  # drop 0.075
    assert "only_c" not in table.index  # no pretrained scores for its subject


def test_style_validity_reads_style_acc_and_prompt_acc_on_new_contents():
    import pandas as pd

    from dcobench.world.validity import validity_table

    def rows(variant, concept, style, prompt):
        return [{"variant": variant, "concept": concept, "prompt_set": "world_content",
                 "metric": m, "value": x} for m, x in (("style_acc", style), ("prompt_acc", prompt))]

    scores = pd.DataFrame(rows("pretrained", "s", 0.0, 0.95) + rows("pretrained", "t", 0.0, 0.9)
                          + rows("learned", "s", 0.9, 0.7) + rows("learned", "t", 0.75, 0.6)
                          + rows("faint", "s", 0.9, 0.9) + rows("faint", "t", 0.5, 0.9))
    table = validity_table(scores, kind="style").set_index("variant")
    assert table.loc["learned", "db_style_acc_world_content"] == pytest.approx(0.825)
    assert table.loc["learned", "db_style_acc_world_content_min"] == pytest.approx(0.75)
    assert table.loc["learned", "prompt_acc_drop"] == pytest.approx(0.275)
    assert bool(table.loc["learned", "valid"])
    assert not bool(table.loc["faint", "valid"])  # style_acc 0.7, drop 0.025
    assert "db_style_acc_world_content_world_content" not in table.columns
