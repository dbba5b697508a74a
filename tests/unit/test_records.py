"""Experiment records: `record write` on a small finished run, `record diff`, and the report
rebuilt from a record alone (dcobench/record/)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dcobench.__main__ import main
from dcobench.record import RecordError, diff_records, read_manifest, write_record
from dcobench.record.manifest import rule_times
from dcobench.record.report import report_from_record
from dcobench.report import write_aggregates
from dcobench.sample.guides import Guide

CLAIM = {"registered": "abc1234", "claims_file": "config/world_claims.yaml", "claim": "dco_text",
         "test": "siglip_text: dco − db @ cfg", "effect": 0.05, "se": 0.01, "ci_low": 0.01,
         "ci_high": 0.09, "bound": 0.0, "units": 8, "concepts": 2, "verdict": "held", "note": "",
         "statement": "DCO keeps prompt fidelity", "secondary": False, "claim_verdict": "held"}


def _finished_run(root: Path) -> Path:
    """results/<exp> as a finished run leaves it: aggregated tables, claims, a sample grid,
    benchmark files, configfiles.json naming its config."""
    rng = np.random.default_rng(0)
    exp = root / "results" / "mini"
    rows = [dict(exp="mini", group="subject", concept=c, variant=v, **Guide.parse(g).columns(7.5),
                 file=f"p{p:03d}_s0.png", prompt_index=p, seed=0, metric=m, value=rng.random(),
                 prompt_set="object_customization")
            for c in ("A", "B") for v in ("db", "dco") for g in ("cfg", "rg3")
            for p in range(2) for m in ("dino", "siglip_text")]
    (exp / "scores").mkdir(parents=True)
    pd.DataFrame(rows).to_csv(exp / "scores" / "all.csv", index=False)
    write_aggregates([exp / "scores" / "all.csv"], exp / "tables")
    pd.DataFrame([CLAIM]).to_csv(exp / "tables" / "claims.csv", index=False)
    grid = exp / "figures" / "mini" / "grid_subject_A.png"
    grid.parent.mkdir(parents=True)
    ramp = np.linspace(0, 255, 300 * 450 * 3).reshape(300, 450, 3)  # smooth, + some noise
    noisy = ramp + rng.integers(0, 64, ramp.shape)
    Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(grid)
    for rel, s in (("train/subject/A/dco.tsv", 10.5), ("train/subject/B/dco.tsv", 2.0),
                   ("aggregate.tsv", 0.25)):
        (exp / "benchmarks" / rel).parent.mkdir(parents=True, exist_ok=True)
        (exp / "benchmarks" / rel).write_text(f"s\th:m:s\tmax_rss\n{s}\t0:00:01\t123.4\n")
    for concept, commit in (("A", "a" * 40), ("B", "a" * 40), ("C", "b" * 40)):  # C: resumed
        model = exp / "models" / "subject" / concept / "dco"
        model.mkdir(parents=True)
        (model / "manifest.json").write_text(json.dumps(
            {"stage": "train", "git": commit, "environment": {"torch_threads": 1, "cpu": "x"}}))
    (exp / "tables" / "manifest.json").write_text(json.dumps({"sha256": {}}))  # not a job's
    staged = exp / "models" / "subject" / "A" / ".groups" / "db+dco" / "dco"  # published above
    staged.mkdir(parents=True)
    (staged / "manifest.json").write_text(json.dumps({"stage": "train", "git": "a" * 40}))
    config = root / "mini.yaml"
    config.write_text("experiment: mini  # where results go\n")
    (exp / "configfiles.json").write_text(json.dumps({"configfiles": [str(config)]}))
    return exp


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """One finished run for the module (aggregation takes seconds); tests copy what they change."""
    return _finished_run(tmp_path_factory.mktemp("run"))


@pytest.fixture
def record(tmp_path, finished) -> Path:
    return write_record(finished, tmp_path / "experiments" / "mini" / "record")


def test_record_write_is_small_with_manifest(tmp_path, record):
    manifest = read_manifest(record)
    assert manifest["experiment"] == "mini" and len(manifest["config_hash"]) == 64
    git = manifest["git"]  # the run's commit comes from its job manifests, not the writer's
    assert git["commit"] == "a" * 40
    assert git["run_commits"] == [{"commit": "a" * 40, "jobs": 2}, {"commit": "b" * 40, "jobs": 1}]
    assert set(git["writer"]) == {"commit", "dirty"}
    assert manifest["run_environments"] == [{"jobs": 3, "torch_threads": 1, "cpu": "x"}]
    env = manifest["environment"]
    assert {"python", "cpu", "torch_threads", "packages"} <= set(env)
    assert {"torch", "diffusers"} <= set(env["packages"])
    times = {r["rule"]: r for r in manifest["rule_times"]}
    assert times["train"]["jobs"] == 2 and times["train"]["wall_s"] == pytest.approx(12.5)
    assert times["aggregate"]["wall_s"] == pytest.approx(0.25)
    assert manifest["claims"] == {"file": "config/world_claims.yaml", "registered": "abc1234",
                                  "tests": 1}
    assert (record / "config" / "mini.yaml").read_text().startswith("experiment: mini")
    for name in ("summary", "paired", "per_concept", "claims"):
        assert (record / "tables" / f"{name}.csv").exists(), name
    assert "| dco_text | siglip_text: dco − db @ cfg | +0.0500 |" in (record / "claims.md").read_text()
    grid = record / "images" / "mini" / "grid_subject_A.png"
    with Image.open(grid) as img:
        assert max(img.size) <= 1024
    assert grid.stat().st_size <= 200_000
    assert sum(p.stat().st_size for p in record.rglob("*") if p.is_file()) < 2_000_000
    assert not list(record.parent.glob(".record-*"))  # no scratch left beside it


def test_record_write_refuses_a_large_record(tmp_path, finished):
    exp = finished
    out = tmp_path / "rec"
    with pytest.raises(RecordError, match="over the 1,000-byte limit; largest: images/mini/grid_subject_A.png"):
        write_record(exp, out, limit=1000)
    assert not out.exists()
    small = write_record(exp, out, image_budget=20_000)  # the grid shrinks to fit its budget
    with Image.open(small / "images" / "mini" / "grid_subject_A.png") as img:
        assert max(img.size) <= 225
    out = tmp_path / "rec2"
    assert main(["record", "write", "--results", str(exp), "--out", str(out),
                 "--max-bytes", "1000"]) == 1
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "overlay.yaml").write_text("experiment: mini\n")
    with pytest.raises(RecordError, match="is not a record"):  # never replaces an experiment folder
        write_record(exp, tmp_path / "exp")
    assert (tmp_path / "exp" / "overlay.yaml").exists()
    with pytest.raises(RecordError, match="summary.csv not found"):
        write_record(tmp_path / "none", out, configs=[finished.parents[1] / "mini.yaml"])


def test_rule_times_sums_per_rule_and_tolerates_missing_rss(tmp_path):
    (tmp_path / "sample" / "a").mkdir(parents=True)
    (tmp_path / "sample" / "a" / "x.tsv").write_text("s\tmax_rss\n1.5\t-\n")
    (tmp_path / "sample" / "b.tsv").write_text("s\tmax_rss\n2.0\t10\n")
    assert rule_times(tmp_path) == [{"rule": "sample", "jobs": 2, "wall_s": 3.5,
                                     "max_rss_mb": 10.0}]


def _changed_copy(record: Path, dest: Path) -> Path:
    """A copy of `record` in which the claim is no longer held and one summary mean moved."""
    shutil.copytree(record, dest)
    claims = pd.read_csv(dest / "tables" / "claims.csv")
    claims.loc[0, ["verdict", "claim_verdict"]] = "inconclusive"
    claims.to_csv(dest / "tables" / "claims.csv", index=False)
    summary = pd.read_csv(dest / "tables" / "summary.csv")
    summary.loc[0, "mean"] += 0.01
    summary.to_csv(dest / "tables" / "summary.csv", index=False)
    return dest


def test_record_diff_reports_the_moved_verdict_and_number(tmp_path, record, capsys):
    other = _changed_copy(record, tmp_path / "other")
    assert diff_records(record, record).empty
    changes = diff_records(record, other)
    assert sorted(changes["kind"]) == ["number", "verdict", "verdict"]
    verdicts = changes[changes["kind"] == "verdict"]
    assert set(verdicts["what"]) == {"test verdict: dco_text / siglip_text: dco − db @ cfg",
                                     "claim verdict: dco_text"}
    assert set(verdicts["A"]) == {"held"} and set(verdicts["B"]) == {"inconclusive"}
    number = changes[changes["kind"] == "number"].iloc[0]
    assert number["what"].startswith("mean: mini / subject / ")
    assert number["delta"] == pytest.approx(0.01)
    assert diff_records(record, other, atol=0.02)["kind"].tolist() == ["verdict", "verdict"]
    assert main(["record", "diff", str(record), str(other)]) == 0
    out = capsys.readouterr().out
    assert "1 number" in out and "held" in out and "inconclusive" in out
    assert main(["record", "diff", str(record), str(other), "--fail-on-diff"]) == 3
    assert main(["record", "diff", str(record), str(record), "--fail-on-diff"]) == 0
    assert "no verdict or number moved" in capsys.readouterr().out


def test_report_rebuilds_from_the_record_alone(tmp_path, finished):
    run = shutil.copytree(finished.parents[1], tmp_path / "run")
    record = write_record(run / "results" / "mini", tmp_path / "record")
    shutil.rmtree(run)  # the results folder and the config are gone
    before = {p: p.read_bytes() for p in record.rglob("*") if p.is_file()}
    out = report_from_record(record, tmp_path / "report.html")
    text = out.read_text(encoding="utf-8")
    assert "Our pre-registered claims" in text and "Experiment mini" in text
    assert "from the record" in text  # the stored grid
    assert text.count('src="data:image/png;base64,') == 2  # the Pareto figure and the grid
    assert before == {p: p.read_bytes() for p in record.rglob("*") if p.is_file()}  # read only


def test_record_reads_the_runs_own_config_not_the_writers(tmp_path, finished, monkeypatch):
    """configfiles.json names config files relative to the run's working directory (the folder
    holding results/<exp>); a record written from elsewhere copies and hashes those files."""
    run = tmp_path / "checkout"
    shutil.copytree(finished.parents[1], run)
    (run / "results" / "mini" / "configfiles.json").write_text(
        json.dumps({"configfiles": ["mini.yaml"]}))
    (run / "mini.yaml").write_text("experiment: mini  # the run's own\n")
    elsewhere = tmp_path / "writer"
    elsewhere.mkdir()
    (elsewhere / "mini.yaml").write_text("experiment: mini  # the writer's, edited since\n")
    monkeypatch.chdir(elsewhere)
    record = write_record(run / "results" / "mini", tmp_path / "rec")
    assert (record / "config" / "mini.yaml").read_text() == "experiment: mini  # the run's own\n"
