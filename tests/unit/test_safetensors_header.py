"""A saved LoRA's bytes depend on its tensors and metadata only, not on the header order the
safetensors writer happened to choose in that process."""

import json
import struct

import torch
from safetensors.torch import load_file, safe_open, save_file

from dcobench.io import sort_safetensors_header
from dcobench.models.adapters import LORA_WEIGHT_NAME, save_lora


def _header(path):
    data = path.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    return n, data[8 : 8 + n]


def _rewrite_header(path, header: dict) -> None:
    """The same file with its header serialised in the given key order (what another process's
    writer may produce)."""
    data = path.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n :])


def test_two_header_orders_become_one_file(tmp_path):
    tensors = {"b.weight": torch.arange(6.0).reshape(2, 3), "a.weight": torch.ones(4)}
    first, second = tmp_path / "first.safetensors", tmp_path / "second.safetensors"
    save_file(tensors, str(first), metadata={"format": "pt", "lora_adapter_metadata": "{}"})
    second.write_bytes(first.read_bytes())
    _, raw = _header(second)
    header = json.loads(raw)
    meta = header.pop("__metadata__")
    reordered = {k: header[k] for k in sorted(header, reverse=True)}
    reordered["__metadata__"] = dict(reversed(list(meta.items())))
    _rewrite_header(second, reordered)
    assert first.read_bytes() != second.read_bytes()  # the case the writer can produce

    for p in (first, second):
        sort_safetensors_header(p)
    assert first.read_bytes() == second.read_bytes()
    n, raw = _header(first)
    assert n % 8 == 0
    assert list(json.loads(raw)) == sorted(json.loads(raw))
    loaded = load_file(str(first))
    assert set(loaded) == set(tensors) and all(torch.equal(loaded[k], v) for k, v in tensors.items())
    with safe_open(str(first), "pt") as f:
        assert f.metadata() == {"format": "pt", "lora_adapter_metadata": "{}"}


def test_save_lora_writes_a_sorted_header(tmp_path):
    state = {"unet.down_blocks.0.attentions.0.to_q.lora_A.weight": torch.randn(4, 8),
             "unet.down_blocks.0.attentions.0.to_q.lora_B.weight": torch.zeros(8, 4)}
    path = save_lora(tmp_path, state, {"r": 4, "lora_alpha": 4, "target_modules": {"to_q"}})
    assert path == tmp_path / LORA_WEIGHT_NAME
    _, raw = _header(path)
    header = json.loads(raw)
    assert list(header) == sorted(header)
    assert list(header["__metadata__"]) == sorted(header["__metadata__"])
    before = path.read_bytes()
    sort_safetensors_header(path)  # idempotent: a sorted file is left as it is
    assert path.read_bytes() == before
