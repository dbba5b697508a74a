"""An output corrupted or truncated after it was written (a LoRA, a learned-embedding file, an
index.csv, a score table): the next job that reads it refuses, naming the file, because its
sha256 differs from the one its folder's manifest.json recorded; deleting it as the message says
and rerunning the job that writes it finishes with a verified file."""

from __future__ import annotations

import pytest
from faultkit import EMBEDS, LORA, copy, verified

pytestmark = pytest.mark.slow


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte changed: only a checksum sees it
    path.write_bytes(bytes(data))


def _refused_naming(out, path):
    text = out.stderr
    assert out.returncode == 1, text[-3000:]
    assert f"{path}: corrupted or truncated after it was written" in text, text[-3000:]
    assert f"delete {path} and rerun" in text, text[-3000:]
    assert "Traceback" not in text, text[-3000:]


@pytest.mark.parametrize("name,damage", [(LORA, flip_byte), (EMBEDS, truncate)])
def test_corrupted_model_file_is_refused_by_sampling(stages, trained, tmp_path, name, damage):
    model = copy(trained, tmp_path / "model")
    damage(model / name)
    samples = tmp_path / "samples"
    _refused_naming(stages.run(stages.sample_argv(model, samples)), model / name)
    assert not (samples / "cfg" / "index.csv").exists()
    (model / name).unlink()  # as the message says; the workflow then reruns training
    stages.ok(stages.train_argv(model))
    verified(model, LORA, EMBEDS)


def test_truncated_index_is_refused_by_scoring(stages, trained, sampled, tmp_path):
    samples = copy(sampled, tmp_path / "samples")
    index = samples / "cfg" / "index.csv"
    truncate(index)
    scores = tmp_path / "scores"
    _refused_naming(stages.run(stages.score_argv(samples / "cfg", scores)), index)
    assert not (scores / "cfg.csv").exists()
    index.unlink()
    stages.ok(stages.sample_argv(trained, samples))
    verified(samples, "cfg/index.csv")


def test_corrupted_score_table_is_refused_by_aggregation(stages, sampled, scored, tmp_path):
    scores = copy(scored, tmp_path / "scores")
    table = scores / "cfg.csv"
    flip_byte(table)
    agg = tmp_path / "aggregate"
    _refused_naming(stages.run(["aggregate", "--scores", str(table), "--out-dir", str(agg)]),
                    table)
    assert not agg.exists() or not list(agg.glob("*.csv"))
    table.unlink()
    stages.ok(stages.score_argv(sampled / "cfg", scores))
    verified(scores, "cfg.csv")
    stages.ok(["aggregate", "--scores", str(table), "--out-dir", str(agg)])
