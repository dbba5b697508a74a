"""A grouped command's --members JSON (train, sample, score): one parser, and a mistake in it is
the user's to fix, so `python -m dcobench` prints one line and exits 1, no traceback."""

import json

import pytest

from dcobench.__main__ import main
from dcobench.cli import parse_members
from dcobench.errors import UserError


@pytest.mark.parametrize("text, message", [
    ("[{", "--members is not valid JSON"),
    ("[]", "--members must be a non-empty JSON list"),
    ('{"out": "x"}', "--members must be a non-empty JSON list"),
    ('[{"objective": "db", "out": "x"}, "y"]', r"--members\[1\] needs objective and out \(and may set options, "
                            r"prior\); got 'y'"),
    ('[{"objective": "db"}]', r"--members\[0\] needs objective and out"),
    ('[{"objective": "db", "out": "x", "lr": 1}]', r"--members\[0\] needs objective and out"),
])
def test_parse_members_refuses_with_one_line(text, message):
    with pytest.raises(UserError, match=message):
        parse_members(text, {"objective", "out"}, {"prior", "options"})


def test_parse_members_returns_the_members():
    members = [{"objective": "db", "out": "a"}, {"objective": "dco", "out": "b", "options": {}}]
    assert parse_members(json.dumps(members), {"objective", "out"}, {"prior", "options"}) == members


@pytest.mark.parametrize("argv", [
    ["train", "--concept", "c", "--members", "[{"],
    ["sample", "--members", '[{"model": "m"}]'],
    ["score", "--metrics", "dino", "--models", '{"dino": "tiny-dinov2"}', "--members",
     '[{"samples": [], "out": "o"}]'],
])
def test_commands_print_one_line_for_a_bad_members(argv, capsys, caplog):
    assert main(argv) == 1
    text = capsys.readouterr().err + caplog.text
    assert "--members" in text and "Traceback" not in text
