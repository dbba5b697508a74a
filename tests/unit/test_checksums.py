"""Manifests record the sha256 of their folder's files and `verify_file` refuses a file changed
after it was written; atomic writers leave the previous file whole when the disk fills up."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import resource

import pytest

from dcobench.__main__ import disk_full
from dcobench.io import (
    CorruptFileError,
    staging_dir,
    verify_file,
    write_manifest,
    write_text_atomic,
)


def _folder(tmp_path):
    out = tmp_path / "run"
    (out / "cfg").mkdir(parents=True)
    (out / "cfg" / "index.csv").write_text("file\na.png\n")
    (out / "weights.safetensors").write_bytes(bytes(range(256)))
    (out / "checkpoints").mkdir()
    (out / "checkpoints" / "big.bin").write_bytes(b"x")
    write_manifest(out, "test", {})
    return out


def test_manifest_lists_every_final_file_with_its_sha256(tmp_path):
    out = _folder(tmp_path)
    recorded = json.loads((out / "manifest.json").read_text())["sha256"]
    assert sorted(recorded) == ["cfg/index.csv", "weights.safetensors"]  # no checkpoints/
    assert recorded["cfg/index.csv"] == hashlib.sha256(b"file\na.png\n").hexdigest()
    verify_file(out / "cfg" / "index.csv")  # two folders up
    verify_file(out / "weights.safetensors")


@pytest.mark.parametrize("damage", ["flip", "truncate", "append"])
def test_changed_file_is_refused_naming_it(tmp_path, damage):
    out = _folder(tmp_path)
    path = out / "weights.safetensors"
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[100] ^= 1
    elif damage == "truncate":
        data = data[:128]
    else:
        data += b"\0"
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match=rf"{path}: corrupted or truncated .*"
                                               rf"{out / 'manifest.json'} recorded .*delete"):
        verify_file(path)


def test_file_no_manifest_lists_is_read_unchecked(tmp_path):
    path = tmp_path / "old.csv"
    path.write_text("a\n")
    assert verify_file(path) == path
    with pytest.raises(FileNotFoundError, match="missing"):
        verify_file(tmp_path / "absent.csv")


def test_staging_dir_moves_the_manifest_last(tmp_path, monkeypatch):
    import os

    moved = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (moved.append(os.path.basename(b)),
                                                     real(a, b)))
    with staging_dir(tmp_path / "scores") as stage:
        (stage / "z.csv").write_text("1\n")
        write_manifest(stage, "score", {})
        (stage / "a.csv").write_text("2\n")
    assert moved[-1] == "manifest.json"


@contextlib.contextmanager
def _file_size_limit(nbytes):
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def test_full_disk_leaves_the_previous_file_whole_and_no_temp(tmp_path):
    path = tmp_path / "index.csv"
    write_text_atomic(path, "old\n")
    with _file_size_limit(1000), pytest.raises(OSError) as info:
        write_text_atomic(path, "x" * 5000)
    assert info.value.errno == errno.EFBIG and disk_full(info.value)
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["index.csv"]


def test_disk_full_is_recognised_through_wrapping_libraries():
    assert disk_full(RuntimeError("Error while serializing: I/O error: File too large "
                                  "(os error 27)"))
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as exc:
            raise RuntimeError("file write failed") from exc
    except RuntimeError as wrapped:
        assert disk_full(wrapped)
    assert not disk_full(ValueError("bad value"))
