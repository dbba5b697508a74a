"""Pre-registered claims: CIs recomputed by hand from stored score tables (protocol 2: the t
interval on concept means), verdicts that can fail, the hypervolume, and the committed claims
file parses."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from dcobench.analysis import claims as cl

REPO = Path(__file__).resolve().parents[2]
COLUMNS = ["exp", "group", "concept", "variant", "guide", "guidance", "w_rg", "w_text", "file",
           "prompt_index", "seed", "prompt_set", "metric", "value"]


def write_tables(root: Path, values: dict[tuple[str, str], dict[tuple[int, int], float]],
                 metric: str = "prompt_acc", guide: str = "cfg") -> None:
    """Score tables results/scores/subject/<concept>/<variant>/<guide>.csv, one row per image."""
    for (concept, variant), cells in values.items():
        rows = [["w", "subject", concept, variant, guide, guide, "", 7.5, f"p{p}_s{s}.png", p, s,
                 "world_novel", metric, v] for (p, s), v in cells.items()]
        path = root / "scores" / "subject" / concept / variant / f"{guide}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows, columns=COLUMNS).to_csv(path, index=False)


def protocol(path: Path, resamples: int = 400) -> cl.Protocol:
    path.write_text(yaml.safe_dump({
        "bootstrap": {"resamples": resamples, "seed": 3, "level": 0.9},
        "delta": {"prompt_acc": 0.02},
        "claims": [{"id": "dco_prompt", "statement": "DCO beats DB on prompt_acc", "group": "subject",
                    "prompt_sets": ["world_novel"],
                    "tests": [{"kind": "difference", "a": "dco", "b": "db", "guide": "cfg",
                               "metric": "prompt_acc"}]}]}))
    return cl.load_protocol(path)


CONCEPTS = ("a_star", "b_circle", "c_heart", "d_square")  # min_concepts: 4


def synthetic(shift: float, seed: int = 0, concepts: tuple[str, ...] = CONCEPTS) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    for c in concepts:
        base = {(p, s): float(rng.uniform(0.3, 0.7)) for p in range(4) for s in (0, 1)}
        out[(c, "db")] = base
        out[(c, "dco")] = {k: v + shift + float(rng.normal(0, 0.01)) for k, v in base.items()}
    return out


def test_ci_recomputed_by_hand_from_stored_tables(tmp_path):
    write_tables(tmp_path, synthetic(0.05))
    proto = protocol(tmp_path / "claims.yaml")
    res = cl.evaluate(proto, cl.read_world_scores(tmp_path))[0].rows[0]

    # by hand: read the csvs back, pair on (concept, prompt, seed), t interval on concept means
    diffs: dict[str, list[float]] = {}
    for concept in CONCEPTS:
        a = pd.read_csv(tmp_path / f"scores/subject/{concept}/dco/cfg.csv")
        b = pd.read_csv(tmp_path / f"scores/subject/{concept}/db/cfg.csv")
        m = a.merge(b, on=["prompt_index", "seed"])
        diffs[concept] = list(m["value_x"] - m["value_y"])
    means = [sum(d) / len(d) for d in diffs.values()]
    centre = sum(means) / 4
    se = (sum((m - centre) ** 2 for m in means) / 3) ** 0.5 / 2
    t90 = 2.353363434801823  # Student t, 3 df, 0.95 quantile (level 0.9 in protocol())
    assert res["effect"] == pytest.approx(centre) and res["se"] == pytest.approx(se)
    assert res["ci_low"] == pytest.approx(centre - t90 * se)
    assert res["ci_high"] == pytest.approx(centre + t90 * se)
    assert res["bound"] == 0.02 and res["df"] == 3
    assert res["verdict"] == cl.HELD and res["units"] == 32 and res["concepts"] == 4


def test_claim_flips_to_not_held_on_contradicting_scores(tmp_path):
    for shift, expected in ((0.05, cl.HELD), (-0.05, cl.NOT_HELD), (0.0, cl.NOT_HELD)):
        root = tmp_path / f"s{shift}"
        write_tables(root, synthetic(shift))
        result = cl.evaluate(protocol(tmp_path / "claims.yaml"), cl.read_world_scores(root))[0]
        assert result.verdict == expected, (shift, result.rows)


def test_noisy_small_effect_is_inconclusive(tmp_path):
    rng = np.random.default_rng(1)
    data = synthetic(0.0)
    for key in [k for k in data if k[1] == "dco"]:
        data[key] = {u: v + float(rng.normal(0.01, 0.3)) for u, v in data[key].items()}
    write_tables(tmp_path, data)
    assert cl.evaluate(protocol(tmp_path / "claims.yaml"), cl.read_world_scores(tmp_path))[0].verdict \
        == cl.INCONCLUSIVE


def test_unpaired_units_are_an_error_naming_them(tmp_path):
    data = synthetic(0.05)
    del data[("a_star", "dco")][(3, 1)]
    write_tables(tmp_path, data)
    with pytest.raises(ValueError, match=r"dco_prompt: 1 units .*a_star"):
        cl.evaluate(protocol(tmp_path / "claims.yaml"), cl.read_world_scores(tmp_path))


def test_concept_one_arm_never_ran_is_left_out_and_named(tmp_path):
    """A run that trained dbpp on fewer subjects than db (a reduced plan): the test pairs the
    shared concepts, names the others in its note, and its effect is the hand-computed mean over
    the shared ones; no shared concept is "not run"; a hole inside a shared concept stays an error."""
    data = synthetic(0.05)
    data[("d_extra", "db")] = {(0, 0): 0.9, (0, 1): 0.1}  # db only: a subject dco was not run on
    write_tables(tmp_path, data)
    proto = protocol(tmp_path / "claims.yaml")
    row = cl.evaluate(proto, cl.read_world_scores(tmp_path))[0].rows[0]
    shared = [data[(c, "dco")][k] - data[(c, "db")][k] for c in CONCEPTS for k in data[(c, "db")]]
    assert row["effect"] == pytest.approx(np.mean(shared)) and row["concepts"] == 4
    assert row["note"] == "left out (an arm not run there): d_extra" and row["verdict"] == cl.HELD
    from dcobench.report.claims import claims_display

    shown = claims_display(cl.claims_table(cl.evaluate(proto, cl.read_world_scores(tmp_path))))
    assert shown["test"][0] == "prompt_acc: dco − db @ cfg [left out (an arm not run there): d_extra]"
    only = tmp_path / "only"
    write_tables(only, {("a_star", "db"): data[("a_star", "db")], ("b_circle", "dco"): data[("b_circle", "dco")]})
    res = cl.evaluate(proto, cl.read_world_scores(only))[0]
    assert res.verdict == cl.NOT_RUN and "no concept has every arm" in res.rows[0]["note"]


def test_verdict_rules_and_combination():
    """Protocol 2: the CI against the test's bound (δ, or −margin), 0 plays no part."""
    assert cl.verdict(0.03, 0.2, 0.02) == cl.HELD
    assert cl.verdict(0.01, 0.2, 0.02) == cl.INCONCLUSIVE  # the sign, not an effect that matters
    assert cl.verdict(0.001, 0.015, 0.02) == cl.NOT_HELD  # inside (0, δ): positive but too small
    assert cl.verdict(-0.2, -0.01, 0.02) == cl.NOT_HELD
    assert cl.verdict(-0.01, 0.05, 0.02) == cl.INCONCLUSIVE
    assert cl.verdict(-0.04, 0.01, -0.05) == cl.HELD  # non-inferiority, margin 0.05
    assert cl.verdict(-0.09, -0.06, -0.05) == cl.NOT_HELD
    assert cl.combine([cl.HELD, cl.REFUSED]) == cl.REFUSED
    assert cl.combine([cl.HELD, cl.HELD]) == cl.HELD
    assert cl.combine([cl.HELD, cl.INCONCLUSIVE]) == cl.INCONCLUSIVE
    assert cl.combine([cl.INCONCLUSIVE, cl.NOT_HELD]) == cl.NOT_HELD


def test_hypervolume_by_hand():
    # points (0.8, 0.2), (0.5, 0.5), (0.2, 0.9): 0.3·0.2 + 0.3·0.5 + 0.2·0.9 = 0.39
    assert cl.hypervolume(np.array([0.5, 0.8, 0.2]), np.array([0.5, 0.2, 0.9])) == pytest.approx(0.39)
    # a dominated point adds nothing
    assert cl.hypervolume(np.array([0.5, 0.4]), np.array([0.5, 0.4])) == pytest.approx(0.25)


def test_committed_world_claims_parse():
    proto = cl.load_protocol(REPO / "config" / "world_claims.yaml")
    ids = [c.id for c in proto.claims]
    assert {"frontier", "prior_preservation", "reward_guidance", "merge_order",
            "comprehensive_captions", "noise_distance_dco", "noise_distance_beta"} <= set(ids)
    assert proto.version == 2 and proto.level == 0.95 and proto.min_concepts == cl.MIN_CONCEPTS


def test_world_claims_name_arms_their_experiment_in_world_yaml_trains():
    """Each subject or merge claim's experiment is in config/world.yaml and trains (merges) the
    claim's arms on the claim's concepts (a revision's held-out concepts included), so the full
    run tests it."""
    proto = cl.load_protocol(REPO / "config" / "world_claims.yaml")
    world = yaml.safe_load((REPO / "config" / "world.yaml").read_text())
    defs, subjects = world["experiment_defs"], world["data"]["subjects"]
    revisions = [c for c in proto.claims if c.revises]
    assert {c.id for c in revisions} >= {"frontier_b01", "merge_order_b01"}
    for claim in (c for c in proto.claims if c.group == "subject"):
        assert claim.experiment in world["experiments"], claim.id
        exp = defs[claim.experiment]
        trained = subjects if exp["subjects"] == "all" else exp["subjects"]
        assert set(claim.concepts) <= set(trained), claim.id
        for test in claim.tests:
            assert {test.a, test.b} - {None} <= set(exp["variants"]), (claim.id, test)
    for claim in (c for c in proto.claims if c.group == "merge"):  # pairs <subject>__<style>
        assert claim.experiment in world["experiments"], claim.id
        exp = defs[claim.experiment]
        pairs = {f"{s}__{t}" for s in exp["subjects"] for t in exp["styles"]}
        assert set(claim.concepts) <= pairs, claim.id
        for test in claim.tests:
            assert {test.a, test.b} <= set(exp["merges"]), (claim.id, test)
    for claim in revisions:
        assert claim.concepts and claim.reason


def test_bad_claim_names_the_file_and_claim(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"delta": {}, "claims": [
        {"id": "x", "statement": "s", "group": "subject", "tests": [{"kind": "ratio", "a": "dco"}]}]}))
    with pytest.raises(ValueError, match=r"c.yaml: claims\[0\] \(x\): test kind 'ratio'"):
        cl.load_protocol(path)


def test_claims_cli_writes_the_table_with_the_registration(tmp_path, capsys):
    from types import SimpleNamespace

    from dcobench.cli import claims as cli

    write_tables(tmp_path / "results", synthetic(-0.05))
    protocol(tmp_path / "claims.yaml")
    out = tmp_path / "claims.csv"
    cli.run(SimpleNamespace(claims=str(tmp_path / "claims.yaml"), results=str(tmp_path / "results"),
                            out=str(out)))
    table = pd.read_csv(out)
    assert list(table["claim_verdict"]) == [cl.NOT_HELD]
    assert table["registered"][0] == "uncommitted"  # tmp_path is outside any git repository
    assert "not held" in capsys.readouterr().out


# --- the claims rule's function: a claims table from the tables the DAG declares ------------


def write_guides(root: Path, cells: dict[tuple[str, str, str], dict[tuple[int, int], dict[str, float]]]) -> list[Path]:
    """Score tables per (concept, variant, guide) with several metrics per image; their paths."""
    files = []
    for (concept, variant, guide), units in cells.items():
        rows = [["w", "subject", concept, variant, guide, guide, "", 7.5, f"p{p}_s{s}.png", p, s,
                 "world_novel", metric, v]
                for (p, s), metrics in units.items() for metric, v in metrics.items()]
        path = root / "scores" / "subject" / concept / variant / f"{guide}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows, columns=COLUMNS).to_csv(path, index=False)
        files.append(path)
    return files


def test_claims_table_from_declared_tables_matches_hand_computed_effects(tmp_path):
    """The `claims` rule's function on synthetic tables: a difference, an ω_rg slope, a frontier
    area and a noise-distance log ratio, each effect by hand; an absent arm is "not run"."""
    units = [(p, s) for p in range(2) for s in (0, 1)]
    concepts = (("a_star", 0.0), ("b_heart", 0.1), ("c_cross", 0.0), ("d_square", 0.1))
    # db @ cfg: prompt_acc 0.5 + 0.1·p, subject_acc 0.4; dco @ cfg: prompt_acc + 0.2·(s + 1)
    # dco @ rg<ω>: subject_acc = 0.1·ω + 0.05·p (slope 0.1 for every unit)
    cells = {}
    for concept, bump in concepts:
        cells[(concept, "db", "cfg")] = {(p, s): {"prompt_acc": 0.5 + 0.1 * p, "subject_acc": 0.4}
                                         for p, s in units}
        cells[(concept, "dco", "cfg")] = {(p, s): {"prompt_acc": 0.5 + 0.1 * p + 0.2 * (s + 1),
                                                   "subject_acc": 0.4 + bump} for p, s in units}
        for w in (2, 4):
            cells[(concept, "dco", f"rg{w}")] = {(p, s): {"subject_acc": 0.1 * w + 0.05 * p}
                                                 for p, s in units}
            cells[(concept, "db", f"rg{w}")] = {(p, s): {"subject_acc": 0.3, "prompt_acc": 0.5}
                                                for p, s in units}
        for w in (2, 4):
            cells[(concept, "dco", f"rg{w}")] = {u: {**m, "prompt_acc": 0.6}
                                                 for u, m in cells[(concept, "dco", f"rg{w}")].items()}
    files = write_guides(tmp_path / "results", cells)
    noise = tmp_path / "noise_distance.csv"
    pd.DataFrame([{"concept": c, "variant": v, "timestep": t, "distance": d}
                  for c, _ in concepts for t in (100, 500)
                  for v, d in (("db", 2.0 * np.e), ("dco", 2.0))]).to_csv(noise, index=False)
    path = tmp_path / "claims.yaml"
    path.write_text(yaml.safe_dump({
        "bootstrap": {"resamples": 200, "seed": 0, "level": 0.95},
        "delta": {"prompt_acc": 0.02, "slope": 0.005, "frontier_area": 0.005, "log_ratio": 0.02},
        "claims": [
            {"id": "prompt", "statement": "DCO beats DB on prompt_acc", "group": "subject",
             "prompt_sets": ["world_novel"],
             "tests": [{"kind": "difference", "a": "dco", "b": "db", "metric": "prompt_acc"}]},
            {"id": "slope", "statement": "ω_rg raises subject_acc", "group": "subject", "secondary": True,
             "tests": [{"kind": "slope", "a": "dco", "guides": ["rg2", "rg4"], "metric": "subject_acc"}]},
            {"id": "area", "statement": "frontier", "group": "subject",
             "tests": [{"kind": "frontier_area", "a": "dco", "b": "db", "guides": ["rg2", "rg4"],
                        "x": "subject_acc", "y": "prompt_acc"}]},
            {"id": "noise", "statement": "noise distance", "group": "noise_distance",
             "tests": [{"kind": "log_ratio", "a": "db", "b": "dco", "metric": "distance"}]},
            {"id": "absent", "statement": "p.p.", "group": "subject",
             "tests": [{"kind": "difference", "a": "dco", "b": "db", "metric": "prompt_acc"},
                       {"kind": "difference", "a": "dbpp", "b": "db", "metric": "prompt_acc"}]},
            {"id": "absent_noise", "statement": "β", "group": "noise_distance",
             "tests": [{"kind": "log_ratio", "a": "dco_b05", "b": "dco", "metric": "distance"}]},
        ]}))
    table = cl.claims_from_tables(path, files, noise).set_index("test")
    by_claim = table.reset_index().groupby("claim")
    effect = {c: list(g["effect"]) for c, g in by_claim}
    # difference: mean of 0.2·(s + 1) over s ∈ {0, 1} = 0.3
    assert effect["prompt"][0] == pytest.approx(0.3)
    # slope of 0.1·ω (+ a unit constant) on ω ∈ {2, 4}: 0.1
    assert effect["slope"][0] == pytest.approx(0.1)
    # frontier: dco points (x = mean subject_acc, y = 0.6) at ω 2, 4: x = 0.225, 0.425 → area
    # 0.425·0.6 = 0.255; db points (0.3, 0.5) twice → 0.15; gap 0.105
    assert effect["area"][0] == pytest.approx(0.425 * 0.6 - 0.3 * 0.5)
    # log(2e) − log(2) = 1
    assert effect["noise"][0] == pytest.approx(1.0)
    verdicts = table.reset_index().drop_duplicates("claim").set_index("claim")["claim_verdict"]
    assert verdicts["prompt"] == cl.HELD and verdicts["noise"] == cl.HELD
    assert verdicts["absent"] == cl.NOT_RUN and verdicts["absent_noise"] == cl.NOT_RUN
    absent = table[table["claim"] == "absent"]
    assert list(absent["verdict"]) == [cl.HELD, cl.NOT_RUN]  # the run test keeps its verdict
    assert absent["effect"].isna().tolist() == [False, True]
    assert "dbpp" in absent["note"].iloc[1]
    assert table.loc[table["claim"] == "slope", "secondary"].tolist() == [True]
    # no noise-distance table: its claims are not run, the others unchanged
    without = cl.claims_from_tables(path, files, None)
    assert set(without.loc[without["claim"].str.startswith("noise"), "verdict"]) == {cl.NOT_RUN}
    assert without.loc[without["claim"] == "prompt", "effect"].iloc[0] == pytest.approx(0.3)


def test_committed_claims_on_a_run_without_their_arms_are_not_run(tmp_path):
    """The world claims file on a run that has only db and dco at cfg: every claim is listed,
    those whose arms are absent as "not run", no crash."""
    files = write_guides(tmp_path, {(c, v, "cfg"): {(0, 0): {"prompt_acc": 0.5, "subject_acc": 0.5}}
                                    for c in ("a_star", "b_heart") for v in ("db", "dco")})
    table = cl.claims_from_tables(REPO / "config" / "world_claims.yaml", files)
    proto = cl.load_protocol(REPO / "config" / "world_claims.yaml")
    assert list(table.drop_duplicates("claim")["claim"]) == [c.id for c in proto.claims]
    assert set(table["claim_verdict"]) == {cl.NOT_RUN}


def test_report_claims_section_prints_commit_verdicts_and_not_run(tmp_path):
    """The report's claims table from the csv `dcobench claims` writes: id, statement,
    primary/secondary, each test's effect, 95% CI and verdict, the claim's verdict, the commit."""
    from types import SimpleNamespace

    from dcobench.cli import claims as cli
    from dcobench.report.claims import claims_section
    from dcobench.report.html import render_html

    write_tables(tmp_path / "results", synthetic(0.05))
    files = sorted((tmp_path / "results").glob("scores/*/*/*/*.csv"))
    path = tmp_path / "claims.yaml"
    protocol(path)
    raw = yaml.safe_load(path.read_text())
    raw["claims"].append({"id": "pp", "statement": "p.p. helps", "group": "subject", "secondary": True,
                          "tests": [{"kind": "difference", "a": "dbpp", "b": "db", "metric": "prompt_acc"}]})
    raw["claims"].append({"id": "merge", "statement": "merges", "group": "merge",
                          "tests": [{"kind": "difference", "a": "dco-arithmetic", "b": "db-arithmetic",
                                     "metric": "prompt_acc"}] * 3})
    path.write_text(yaml.safe_dump(raw))
    out = tmp_path / "claims.csv"
    cli.run(SimpleNamespace(claims=str(path), scores=[str(f) for f in files], noise_distance=None,
                            results=None, out=str(out)))
    section = claims_section(out)
    shown = section.items[0][0]
    assert list(shown.columns) == ["claim", "statement", "role", "registered", "paper", "test",
                                   "effect", "95% CI", "bound", "verdict", "claim verdict",
                                   "p held / not held"]
    assert list(shown["claim"]) == ["dco_prompt", "pp", "merge"]
    assert list(shown["role"]) == ["primary", "secondary", "primary"]
    assert list(shown["claim verdict"]) == [cl.HELD, cl.NOT_RUN, cl.NOT_RUN]
    assert shown["test"][2].startswith("3 tests; no prompt_acc scores for dco-arithmetic")  # one row
    row = pd.read_csv(out).iloc[0]
    assert shown["effect"][0] == f"{row['effect']:+.4f}"
    assert shown["95% CI"][0] == f"[{row['ci_low']:+.3f}, {row['ci_high']:+.3f}]"
    assert shown["95% CI"][1] == "" and shown["verdict"][1] == cl.NOT_RUN
    assert shown["bound"][0] == "+0.020" and shown["bound"][1] == ""
    assert shown["p held / not held"][0] == f"{row['claim_p_held']:.3f} / {row['claim_p_not_held']:.3f}"
    text = render_html("t", [section])
    assert "at commit uncommitted" in text and "not run" in text and "p.p. helps" in text
    assert claims_section(None) is None
    warned = render_html("t", [claims_section(out, caveat="The testbed is not yet valid.")])
    assert "Caveat: The testbed is not yet valid. Pre-registered in" in warned


def test_demo_sized_run_lists_every_claim_refused_or_not_run(tmp_path):
    """The demo (config.yaml: 2 subjects) on the world claims file: the claims step and the
    report's section still work; claims whose arms ran are "refused" (2 concepts < the
    protocol's minimum), with the reason in the note, the others "not run"."""
    from dcobench.report.claims import claims_display

    guides = ("cfg", "rg2", "rg3", "rg4", "rg5")
    cells = {(c, v, g): {(p, s): {"prompt_acc": 0.5, "subject_acc": 0.4 + 0.01 * p}
                         for p in range(2) for s in (0, 1)}
             for c in ("split_star", "quartered_square") for v in ("db", "dco", "dbpp")
             for g in guides}
    table = cl.claims_from_tables(REPO / "config" / "world_claims.yaml", write_guides(tmp_path, cells))
    verdicts = table.drop_duplicates("claim").set_index("claim")["claim_verdict"]
    assert verdicts["frontier"] == verdicts["prior_preservation"] == cl.REFUSED
    assert set(verdicts) == {cl.REFUSED, cl.NOT_RUN}
    note = table.loc[table["claim"] == "frontier", "note"].iloc[0]
    assert note.startswith("refused: 2 concepts < min_concepts 4")
    shown = claims_display(table)
    assert len(shown) and shown.loc[shown["claim"] == "frontier", "paper"].iloc[0].startswith("Fig. 1")
