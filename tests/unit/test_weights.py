"""Weights fetched once before any GPU job (issue 36, item 4): which files, which names, which
spec the jobs load; single-file checkpoints refused with the right message."""

import pytest

from dcobench import weights
from dcobench.modelspec import spec_problem

# The full file list of stabilityai/stable-diffusion-xl-base-1.0 as the hub API returns it
# (HfApi().list_repo_files), recorded in InvokeAI's tests
# (tests/backend/model_manager/util/test_hf_model_select.py, fixture sdxl_base_files).
SDXL_BASE_FILES = [
    ".gitattributes", "01.png", "LICENSE.md", "README.md", "comparison.png", "model_index.json",
    "pipeline.png", "scheduler/scheduler_config.json", "sd_xl_base_1.0.safetensors",
    "sd_xl_base_1.0_0.9vae.safetensors", "sd_xl_offset_example-lora_1.0.safetensors",
    "text_encoder/config.json", "text_encoder/flax_model.msgpack",
    "text_encoder/model.fp16.safetensors", "text_encoder/model.onnx",
    "text_encoder/model.safetensors", "text_encoder/openvino_model.bin",
    "text_encoder/openvino_model.xml", "text_encoder_2/config.json",
    "text_encoder_2/flax_model.msgpack", "text_encoder_2/model.fp16.safetensors",
    "text_encoder_2/model.onnx", "text_encoder_2/model.onnx_data",
    "text_encoder_2/model.safetensors", "text_encoder_2/openvino_model.bin",
    "text_encoder_2/openvino_model.xml", "tokenizer/merges.txt",
    "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json", "tokenizer/vocab.json",
    "tokenizer_2/merges.txt", "tokenizer_2/special_tokens_map.json",
    "tokenizer_2/tokenizer_config.json", "tokenizer_2/vocab.json", "unet/config.json",
    "unet/diffusion_flax_model.msgpack", "unet/diffusion_pytorch_model.fp16.safetensors",
    "unet/diffusion_pytorch_model.safetensors", "unet/model.onnx", "unet/model.onnx_data",
    "unet/openvino_model.bin", "unet/openvino_model.xml", "vae/config.json",
    "vae/diffusion_flax_model.msgpack", "vae/diffusion_pytorch_model.fp16.safetensors",
    "vae/diffusion_pytorch_model.safetensors", "vae_1_0/config.json",
    "vae_1_0/diffusion_pytorch_model.fp16.safetensors",
    "vae_1_0/diffusion_pytorch_model.safetensors", "vae_decoder/config.json",
    "vae_decoder/model.onnx", "vae_decoder/openvino_model.bin", "vae_decoder/openvino_model.xml",
    "vae_encoder/config.json", "vae_encoder/model.onnx", "vae_encoder/openvino_model.bin",
    "vae_encoder/openvino_model.xml",
]
# SDXL base's model_index.json (the component entries; feature_extractor/image_encoder are null)
SDXL_MODEL_INDEX = {
    "_class_name": "StableDiffusionXLPipeline", "_diffusers_version": "0.19.0.dev0",
    "force_zeros_for_empty_prompt": True, "add_watermarker": None,
    "scheduler": ["diffusers", "EulerDiscreteScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
    "tokenizer": ["transformers", "CLIPTokenizer"], "tokenizer_2": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
    "feature_extractor": [None, None], "image_encoder": [None, None],
}


def test_sdxl_base_downloads_the_fp16_components_only():
    components = weights.pipeline_components(SDXL_MODEL_INDEX)
    assert components == ["scheduler", "text_encoder", "text_encoder_2", "tokenizer",
                          "tokenizer_2", "unet", "vae"]
    chosen = weights.select_files(SDXL_BASE_FILES, components)
    assert chosen == sorted([
        "model_index.json", "scheduler/scheduler_config.json",
        "text_encoder/config.json", "text_encoder/model.fp16.safetensors",
        "text_encoder_2/config.json", "text_encoder_2/model.fp16.safetensors",
        "tokenizer/merges.txt", "tokenizer/special_tokens_map.json",
        "tokenizer/tokenizer_config.json", "tokenizer/vocab.json",
        "tokenizer_2/merges.txt", "tokenizer_2/special_tokens_map.json",
        "tokenizer_2/tokenizer_config.json", "tokenizer_2/vocab.json",
        "unet/config.json", "unet/diffusion_pytorch_model.fp16.safetensors",
        "vae/config.json", "vae/diffusion_pytorch_model.fp16.safetensors",
    ])
    assert [weights.local_name(f) for f in chosen if f.endswith(".safetensors")] == [
        "text_encoder/model.safetensors", "text_encoder_2/model.safetensors",
        "unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors"]


def test_without_a_variant_the_plain_safetensors_are_chosen():
    files = [f for f in SDXL_BASE_FILES if ".fp16." not in f]
    chosen = weights.select_files(files, weights.pipeline_components(SDXL_MODEL_INDEX))
    assert "unet/diffusion_pytorch_model.safetensors" in chosen
    assert not any(f.endswith((".bin", ".msgpack", ".onnx", ".xml")) for f in chosen)
    with pytest.raises(ValueError, match="components"):
        weights.select_files(SDXL_BASE_FILES)


def test_open_clip_and_transformers_repos_get_their_own_weights_only():
    # a timm/open_clip repository's layout (both towers' weight files, open_clip's config)
    clip = ["README.md", "config.json", "model.safetensors", "open_clip_config.json",
            "open_clip_model.safetensors", "open_clip_pytorch_model.bin", "pytorch_model.bin"]
    assert weights.select_files(clip) == ["config.json", "open_clip_config.json",
                                          "open_clip_model.safetensors"]
    dino = ["README.md", "config.json", "flax_model.msgpack", "model.safetensors",
            "preprocessor_config.json", "pytorch_model.bin", "tf_model.h5"]
    assert weights.select_files(dino) == ["config.json", "model.safetensors",
                                          "preprocessor_config.json"]


def test_jobs_load_the_downloaded_folder_of_a_hub_pipeline(monkeypatch, tmp_path):
    monkeypatch.setenv("DCOBENCH_CACHE", str(tmp_path))
    base = "stabilityai/stable-diffusion-xl-base-1.0"
    folder = tmp_path / "weights" / "stabilityai--stable-diffusion-xl-base-1.0"
    assert weights.job_spec("base", base) == str(folder)
    assert weights.job_spec("dino", "facebook/dinov2-base") == "facebook/dinov2-base"
    assert weights.job_spec("base", "tiny-sdxl") == "tiny-sdxl"
    assert weights.job_spec("base", str(tmp_path)) == str(tmp_path)
    # offline, the downloaded folder makes the hub id usable at DAG-build time
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert "not in the local cache" in spec_problem("base", base)
    folder.mkdir(parents=True)
    (folder / "model_index.json").write_text("{}")
    (folder / weights.COMPLETE).write_text("{}")
    assert spec_problem("base", base) is None


def test_a_single_file_checkpoint_is_refused_with_the_conversion_to_run(tmp_path):
    ckpt = tmp_path / "sd_xl_base_1.0.safetensors"
    ckpt.write_bytes(b"\0" * 16)
    problem = spec_problem("base", str(ckpt))
    assert "single-file checkpoint" in problem and "no such folder" not in problem
    assert "from_single_file" in problem and "save_pretrained" in problem


def _fake_hub(monkeypatch, repo_dir):
    """huggingface_hub's three calls `download` makes, served from a local folder."""
    import shutil

    import huggingface_hub

    files = sorted(str(p.relative_to(repo_dir)) for p in repo_dir.rglob("*") if p.is_file())
    fetched = []

    def snapshot(repo, allow_patterns=None, local_dir=None, **_):
        for name in allow_patterns:
            (local_dir / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(repo_dir / name, local_dir / name)
            fetched.append(name)
        return str(local_dir)

    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_files", lambda self, repo: files)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda repo, name: repo_dir / name)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot)
    return fetched


@pytest.mark.slow
def test_downloaded_fp16_pipeline_loads_from_its_plain_folder(monkeypatch, tmp_path):
    """A hub pipeline with fp16 variants (a tiny SDXL saved as the hub stores SDXL) is fetched
    into a folder that from_pretrained loads without `variant`, and the job spec points there."""
    import torch
    from diffusers import StableDiffusionXLPipeline

    from dcobench.models.presets import load_sdxl

    monkeypatch.setenv("DCOBENCH_CACHE", str(tmp_path / "cache"))
    hub = tmp_path / "hub"
    load_sdxl("tiny-sdxl", dtype=torch.float16).save_pretrained(hub, variant="fp16")
    (hub / "unet" / "diffusion_flax_model.msgpack").write_bytes(b"flax")  # never fetched
    fetched = _fake_hub(monkeypatch, hub)
    path = weights.download("base", "org/tiny-sdxl", log=lambda _: None)
    assert path == weights.job_spec("base", "org/tiny-sdxl") and weights.is_complete(path)
    assert "unet/diffusion_pytorch_model.fp16.safetensors" in fetched
    assert not any(f.endswith(".msgpack") for f in fetched)
    pipe = StableDiffusionXLPipeline.from_pretrained(path, dtype=torch.float32)
    assert pipe.unet.dtype == torch.float32
    assert weights.check_loadable("base", path).startswith("tokenizers")
    assert weights.download("base", "org/tiny-sdxl", log=lambda _: None) == path  # once


def _serve(status: int, headers: dict):
    """A local HTTP server (a thread) answering every request with `status` and `headers`."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.parametrize(("status", "headers", "words"), [
    (404, {"X-Error-Code": "RepoNotFound"}, "is not a repository on the hub (a typo?"),
    (403, {"X-Error-Code": "GatedRepo"}, "is gated"),
])
def test_a_hub_id_typo_or_gated_repo_is_named_by_its_key(status, headers, words, monkeypatch):
    """The real hub client against a local server that answers as the hub does."""
    import huggingface_hub.constants
    from huggingface_hub import HfApi

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # the login node

    from dcobench.errors import UserError
    from dcobench.weights import _repo_files

    server = _serve(status, headers)
    try:
        api = HfApi(endpoint=f"http://127.0.0.1:{server.server_port}")
        repo = "stabilityai/stable-diffusion-xl-bse-1.0"
        with pytest.raises(UserError) as err:
            _repo_files(api, "base", repo)
        assert f"models.base: '{repo}' {words}" in str(err.value)
    finally:
        server.shutdown()


def test_an_unreachable_hub_is_said_in_words(monkeypatch):
    import huggingface_hub.constants
    from huggingface_hub import HfApi

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # the login node

    from dcobench.errors import UserError
    from dcobench.weights import _repo_files

    api = HfApi(endpoint="http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(UserError, match="the hub is not reachable from this node"):
        _repo_files(api, "dino", "facebook/dinov2-base")
