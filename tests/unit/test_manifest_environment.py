"""Every manifest records the environment its run computed in (issue 38)."""

import json

import torch

from dcobench.io import environment, versions, write_manifest


def test_manifest_records_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    manifest = json.loads(write_manifest(tmp_path, "train", {"seed": 0}, concept="a").read_text())
    env = manifest["environment"]
    assert env["torch_threads"] == torch.get_num_threads()
    assert env["torch_interop_threads"] == torch.get_num_interop_threads()
    assert env["cpu"] and env["machine"] and env["python"].count(".") == 2
    assert env["deterministic_algorithms"] is torch.are_deterministic_algorithms_enabled()
    assert env["env"]["OMP_NUM_THREADS"] == "3" and env["env"]["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert ("cuda_device" in env) == torch.cuda.is_available()
    assert manifest["concept"] == "a" and manifest["options"] == {"seed": 0}  # extras kept
    assert manifest["sha256"] == {}  # no other file in the folder yet


def test_environment_follows_thread_count():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert environment()["torch_threads"] == 1
    finally:
        torch.set_num_threads(before)


def test_versions_cover_the_numeric_stack():
    assert {"torch", "diffusers", "transformers", "peft", "numpy", "pillow"} <= set(versions())


def test_checkpoint_export_keeps_the_training_environment(tmp_path):
    """An exported checkpoint's weights were computed by the parent run: its environment stays."""
    from dcobench.train.checkpoint import export_checkpoint

    parent = tmp_path / "parent"
    (parent / "checkpoints" / "step-2").mkdir(parents=True)
    (parent / "checkpoints" / "step-2" / "pytorch_lora_weights.safetensors").write_bytes(b"x")
    (parent / "train_log.csv").write_text("step,loss,time\n1,0.5,0.1\n2,0.4,0.2\n3,0.3,0.3\n")
    write_manifest(parent, "train", {"steps": 4, "checkpoints": [2]})
    recorded = json.loads((parent / "manifest.json").read_text())
    recorded["environment"] = {**recorded["environment"], "torch_threads": 99}
    (parent / "manifest.json").write_text(json.dumps(recorded))
    out = export_checkpoint(parent, 2, tmp_path / "child", "child")
    child = json.loads((out / "manifest.json").read_text())
    assert child["environment"]["torch_threads"] == 99 and child["checkpoint_step"] == 2
