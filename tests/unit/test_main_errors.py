"""`python -m dcobench`: an expected error is one log line, a bug keeps its traceback."""

from __future__ import annotations

import logging
import sys
import types

import pytest

from dcobench import __main__ as entry
from dcobench.config import ConfigError
from dcobench.errors import UserError, is_expected


@pytest.fixture
def stage(monkeypatch):
    """A stage `boom` whose run raises the exception put in `stage.error`."""
    module = types.ModuleType("dcobench_test_boom")
    module.add_arguments = lambda parser: None

    def run(args):
        raise module.error

    module.run = run
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(entry, "STAGES", {"boom": (module.__name__, "raises")})
    return module


@pytest.mark.parametrize("error", [ConfigError("train.beta must be > 0"), UserError("no such record"),
                                   FileNotFoundError("results/x/tables/summary.csv")])
def test_expected_error_is_one_line(stage, caplog, error):
    stage.error = error
    assert entry.main(["boom"]) == 1
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.getMessage() == str(error) and record.exc_info is None


@pytest.mark.parametrize("error", [KeyError("beta"), ValueError("shapes (2,) and (3,)")])
def test_unexpected_error_keeps_its_traceback(stage, caplog, error):
    stage.error = error
    assert entry.main(["boom"]) == 1
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.exc_info is not None and record.exc_info[1] is error
    assert "unexpected " + type(error).__name__ in record.getMessage()
    assert "Traceback" in caplog.text and "in run" in caplog.text


def test_is_expected_needs_no_import():
    assert is_expected(UserError("x")) and is_expected(ConfigError("x"))
    assert not is_expected(KeyError("x")) and not is_expected(RuntimeError("x"))


def test_a_stage_refusal_is_one_line(tmp_path, caplog):
    """A real stage's refusal (new-concept on a folder without photos) is a UserError: one line."""
    (tmp_path / "mine").mkdir()
    assert entry.main(["new-concept", str(tmp_path / "mine"), "--class", "cat"]) == 1
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "no images" in record.getMessage() and record.exc_info is None
    assert isinstance(UserError("x"), ValueError)  # callers catching ValueError still do


def test_prepare_validate_without_concepts_fails_instead_of_passing(tmp_path):
    """`prepare validate` with no --concepts has checked nothing: exit 1 with the fix, not 0."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "dcobench", "prepare", "validate", "--out",
                          str(tmp_path / "x.json")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "no concept folders given" in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "x.json").exists()
