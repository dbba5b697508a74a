"""`train` / `sample --threads N` set torch's CPU threads, so a command run by hand can match a
workflow job's thread count (and so its bits)."""

import argparse

import pytest
import torch

from dcobench.cli import apply_threads
from dcobench.cli import sample as sample_cli
from dcobench.cli import train as train_cli


@pytest.mark.parametrize("cli", [train_cli, sample_cli])
def test_threads_flag_sets_torch_threads(cli):
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    before = torch.get_num_threads()
    try:
        args = parser.parse_args(["--concept", "c", "--threads", "1"] if cli is train_cli
                                 else ["--out", "o", "--model", "m", "--threads", "1"])
        torch.set_num_threads(2)
        apply_threads(args)
        assert torch.get_num_threads() == 1
        apply_threads(argparse.Namespace(threads=None))  # not given: left as it is
        assert torch.get_num_threads() == 1
        with pytest.raises(ValueError, match="--threads must be >= 1"):
            apply_threads(argparse.Namespace(threads=0))
    finally:
        torch.set_num_threads(before)
