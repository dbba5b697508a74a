"""dcobench.layout: every results path of the DAG comes from it. Each rule's outputs, log and
benchmark in a dry run of the demo (config.yaml) are what Layout gives for the job's wildcards;
the claims read the tables the score rules write."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dcobench.layout import SCORE_GLOBS, Layout, bench_dir, chunk_file, chunk_files, pair

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
L = Layout("results/demo")


def test_paths():
    assert L.model_dir("subject", "dog", "dco", "pytorch_lora_weights.safetensors") == (
        "results/demo/models/subject/dog/dco/pytorch_lora_weights.safetensors")
    assert L.merge_dir("dog", "flat", "dco-arithmetic") == "results/demo/merges/dog__flat/dco-arithmetic"
    assert L.scores("{kind}", "{concept}", "pretrained", "cfg") == (
        "results/demo/scores/{kind}/{concept}/pretrained/cfg.csv")
    assert L.log("sample", "subject", "dog", "dco", "1of2") == "results/demo/logs/sample/subject/dog/dco/1of2.log"
    assert L.benchmark("aggregate") == "results/demo/benchmarks/aggregate.tsv"
    assert chunk_files("x", 2) == ["x/1of2.done", "x/2of2.done"]
    assert bench_dir() == "results/bench" and pair("a", "b") == "a__b"


def test_score_tables_match_the_score_rules(tmp_path):
    """The claims' globs find exactly the tables the score rules write, samples before merges."""
    layout = Layout(tmp_path)
    written = [layout.scores("subject", "dog", "dco", "cfg"), layout.scores("style", "flat", "db", "rg3"),
               layout.merge_scores("dog", "flat", "dco-arithmetic", "cfg")]
    for path in [*written, layout.samples_index("subject", "dog", "dco", "cfg"),
                 str(tmp_path / "tables" / "summary.csv")]:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text("x\n")
    assert [str(p) for p in layout.score_tables()] == sorted(written[:2]) + written[2:]
    assert len(SCORE_GLOBS) == 2


def _jobs(dry_run: str) -> list[tuple[str, dict[str, list[str]], dict[str, str]]]:
    """(rule, {output|log|benchmark: paths}, wildcards) per job of `snakemake -n` output."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", dry_run):
        head = re.match(r"(?:local)?rule (\w+):", block)
        if not head:
            continue
        fields, wildcards = {}, {}
        for line in block.splitlines()[1:]:
            key, _, value = line.strip().partition(": ")
            if key in ("output", "log", "benchmark"):
                fields[key] = [p.removesuffix(" (update)") for p in value.split(", ")]
            elif key == "wildcards":
                wildcards = dict(kv.split("=", 1) for kv in value.split(", "))
        jobs.append((head[1], fields, wildcards))
    return jobs


def _expected(config: dict) -> dict:
    """rule -> wildcards -> (outputs, log, benchmark), from Layout alone."""
    guides, merge_guides = config["sample"]["guides"], config["merge"]["guides"]
    lora = "pytorch_lora_weights.safetensors"

    def kcv(w, variant=None):
        return w["kind"], w["concept"], variant or w["variant"]

    def scm(w):
        return w["subject"], w["style"], w["merge"]

    def both(rule, *parts):
        return [L.log(rule, *parts)], [L.benchmark(rule, *parts)]

    return {
        "prepare_model": lambda w: ([L.prepared_model(w["model"])], *both("prepare_model", w["model"])),
        "world_concepts": lambda w: (None, *both("world_concepts", w["concept"])),
        "prepare": lambda w: ([L.prepared(w["concept"])], *both("prepare", w["concept"])),
        "priors": lambda w: ([L.prior_dir(w["prior"], "index.csv")], *both("priors", w["prior"])),
        "train": lambda w: ([L.group_dir(w["kind"], w["concept"], w["group"], "done.json")],
                            *both("train", w["kind"], w["concept"], w["group"])),
        "train_member": lambda w: ([L.model_dir(*kcv(w), f) for f in (lora, "train_log.csv", "manifest.json")],
                                   None, None),
        "sample": lambda w: ([L.sample_chunks(*kcv(w), chunk_file(w["chunk"]))],
                             *both("sample", *kcv(w), w["chunk"])),
        "sample_pretrained": lambda w: ([L.sample_chunks(*kcv(w, "pretrained"), chunk_file(w["chunk"]))],
                                        *both("sample", *kcv(w, "pretrained"), w["chunk"])),
        "sample_join": lambda w: ([L.samples_index(*kcv(w), g) for g in guides],
                                  [L.log("sample_join", *kcv(w))], None),
        "sample_join_pretrained": lambda w: ([L.samples_index(*kcv(w, "pretrained"), "cfg")],
                                             [L.log("sample_join", *kcv(w, "pretrained"))], None),
        "sample_group": lambda w: (
            [L.sample_group_chunks(w["kind"], w["concept"], w["group"], chunk_file(w["chunk"]))],
            [L.log("sample", w["kind"], w["concept"], w["group"], w["chunk"])],
            [L.benchmark("sample_group", w["kind"], w["concept"], w["group"], w["chunk"])]),
        "sample_member": lambda w: ([L.sample_chunks(*kcv(w), chunk_file(w["chunk"]))], None, None),
        "score_group": lambda w: ([L.score_group_dir(w["kind"], w["concept"], w["group"], "done.json")],
                                  [L.log("score", w["kind"], w["concept"], w["group"])],
                                  [L.benchmark("score_group", w["kind"], w["concept"], w["group"])]),
        "score_member": lambda w: ([L.scores(*kcv(w), g) for g in guides], None, None),
        "score_member_pretrained": lambda w: ([L.scores(*kcv(w, "pretrained"), "cfg")], None, None),
        "score": lambda w: ([L.scores(*kcv(w), g) for g in guides], *both("score", *kcv(w))),
        "score_pretrained": lambda w: ([L.scores(*kcv(w, "pretrained"), "cfg")],
                                       *both("score", *kcv(w, "pretrained"))),
        "merge": lambda w: ([L.merge_dir(*scm(w), "lora", lora)],
                            *both("merge", pair(w["subject"], w["style"]), w["merge"])),
        "sample_merge": lambda w: ([L.merge_chunks(*scm(w), chunk_file(w["chunk"]))],
                                   *both("sample_merge", pair(w["subject"], w["style"]), w["merge"],
                                         w["chunk"])),
        "sample_join_merge": lambda w: ([L.merge_samples_index(*scm(w), g) for g in merge_guides],
                                        [L.log("sample_join", pair(w["subject"], w["style"]), w["merge"])],
                                        None),
        "score_merge": lambda w: ([L.merge_scores(*scm(w), g) for g in merge_guides],
                                  *both("score_merge", pair(w["subject"], w["style"]), w["merge"])),
        "noise_distance_run": lambda w: ([L.noise_distance_run(w["concept"], w["variant"])],
                                         *both("analysis", "noise_distance", w["concept"], w["variant"])),
        "noise_distance": lambda w: ([L.noise_distance()], [L.log("analysis", "noise_distance")], None),
        "lora_cosine": lambda w: ([L.lora_cosine()], *both("analysis", "lora_cosine")),
        "aggregate": lambda w: ([L.table(f"{t}.csv") for t in ("summary", "per_concept", "paired")],
                                *both("aggregate")),
        "claims": lambda w: ([L.table("claims.csv")], *both("claims")),
        "report": lambda w: (None, *both("report")),
    }


@pytest.fixture(scope="module")
def demo_dry_run(tmp_path_factory) -> str:
    workdir = tmp_path_factory.mktemp("layout")
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["report"]["claims"] = str(REPO / config["report"]["claims"])
    (workdir / "demo.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DCOBENCH_CACHE": str(workdir / "models")}
    out = subprocess.run([SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
                          "--configfile", str(workdir / "demo.yaml"), "-n"],
                         capture_output=True, text=True, env=env, timeout=600, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_every_rule_path_comes_from_the_layout(demo_dry_run):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    expected = _expected(config)
    jobs = _jobs(demo_dry_run)
    assert len(jobs) > 60
    for rule, fields, wildcards in jobs:
        if rule == "all":
            continue
        assert rule in expected, f"rule {rule}: add its paths to this test (and to dcobench/layout.py)"
        outputs, log, benchmark = expected[rule](wildcards)
        if outputs is not None:
            assert fields["output"] == outputs, rule
        assert fields.get("log") == log, rule
        assert fields.get("benchmark") == benchmark, rule


def test_the_report_writes_under_the_layout(demo_dry_run):
    (report,) = [f for rule, f, _ in _jobs(demo_dry_run) if rule == "report"]
    assert report["output"][0] == L.report()
    assert {L.table(f"paper_vs_ours.{x}") for x in ("csv", "md", "tex")} | {L.figures_dir()} <= set(
        report["output"])


def test_no_rule_spells_a_results_path():
    """The rules build no path under results/ themselves (the world's own build rules, which
    write results/world/ outside any experiment, aside)."""
    spelled = []
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        if smk.name == "world.smk":
            continue
        for n, line in enumerate(smk.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if re.search(r'f"\{R\}|\bresults/|\{R\}/', code):
                spelled.append(f"{smk.name}:{n}: {line.strip()}")
    assert not spelled, "use dcobench.layout:\n" + "\n".join(spelled)
