"""Every manifest records the environment its run computed in (issue 38)."""

import json

import torch

from dcobench.io import environment, versions, write_manifest


def test_manifest_records_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    manifest = json.loads(write_manifest(tmp_path, "train", {"seed": 0}, sha256={"a": "b"}).read_text())
    env = manifest["environment"]
    assert env["torch_threads"] == torch.get_num_threads()
    assert env["torch_interop_threads"] == torch.get_num_interop_threads()
    assert env["cpu"] and env["machine"] and env["python"].count(".") == 2
    assert env["deterministic_algorithms"] is torch.are_deterministic_algorithms_enabled()
    assert env["env"]["OMP_NUM_THREADS"] == "3" and env["env"]["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert ("cuda_device" in env) == torch.cuda.is_available()
    assert manifest["sha256"] == {"a": "b"} and manifest["options"] == {"seed": 0}  # extras kept


def test_environment_follows_thread_count():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert environment()["torch_threads"] == 1
    finally:
        torch.set_num_threads(before)


def test_versions_cover_the_numeric_stack():
    assert {"torch", "diffusers", "transformers", "peft", "numpy", "pillow"} <= set(versions())
