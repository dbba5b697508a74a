"""A resume state records the environment it was written in, and a resume under another one
(threads, CPU kernels, GPU) continues but says so."""

import logging

import torch

from dcobench.train import resume


def test_resume_under_other_threads_is_flagged(tmp_path, caplog):
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        resume.save_state(tmp_path, {"fingerprint": "abc", "step": 3})
        same = resume.load_state(tmp_path, "abc")
        assert same["step"] == 3 and same["environment"]["torch_threads"] == 1
        assert "resumed_across" not in same

        torch.set_num_threads(2)
        with caplog.at_level(logging.WARNING, logger="dcobench"):
            other = resume.load_state(tmp_path, "abc")
        assert other["step"] == 3  # the run continues rather than losing its steps
        assert other["resumed_across"]["before"]["torch_threads"] == 1
        assert other["resumed_across"]["now"]["torch_threads"] == 2
        assert "another environment" in caplog.text
    finally:
        torch.set_num_threads(threads)


def test_a_state_of_other_options_is_still_refused(tmp_path):
    resume.save_state(tmp_path, {"fingerprint": "abc", "step": 3})
    assert resume.load_state(tmp_path, "other") is None
