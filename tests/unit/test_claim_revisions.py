"""Claims over time: the registration commit of the file and of each claim (a later edit is
flagged), and revisions (a new claim beside the old one, restricted to held-out concepts)."""

import copy

import numpy as np
import pytest
import yaml
from test_claims import protocol, synthetic, write_tables

from dcobench.analysis import claims as cl


def test_registration_commit_is_the_last_commit_of_the_file_and_flags_edits(tmp_path):
    import subprocess

    from dcobench.cli.claims import registration_commit

    def git(*args):
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path,
                              check=True, capture_output=True, text=True).stdout.strip()

    git("init", "-q")
    path = tmp_path / "claims.yaml"
    path.write_text("claims: []\n")
    assert registration_commit(path) == "uncommitted"
    git("add", "claims.yaml")
    git("commit", "-qm", "register")
    registered = git("rev-parse", "HEAD")
    (tmp_path / "other.txt").write_text("x")
    git("add", "other.txt")
    git("commit", "-qm", "later, not the claims")
    assert registration_commit(path) == registered  # the commit that last changed the file
    path.write_text("claims: [edited]\n")
    assert registration_commit(path) == f"{registered} (modified since)"


# --- revisions: a new claim beside the old one, restricted to held-out concepts -------------


def test_revision_must_name_an_earlier_claim_and_a_reason_and_keys_are_checked(tmp_path):
    base = {"id": "a", "statement": "s", "group": "subject",
            "tests": [{"kind": "difference", "a": "dco", "b": "db", "metric": "prompt_acc"}]}
    cases = [({**base, "id": "b", "revises": "nope", "reason": "r"}, r"revises 'nope', which is not an earlier"),
             ({**base, "id": "b", "revises": "a"}, r"\(b\): a revision needs a `reason`"),
             ({**base}, r"the id 'a' is used twice"),
             ({**base, "id": "b", "concept": ["x"]}, r"\(b\): unknown keys \['concept'\]")]
    for second, message in cases:
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump({"delta": {"prompt_acc": 0.02}, "claims": [base, second]}))
        with pytest.raises(ValueError, match=message):
            cl.load_protocol(path)
    path.write_text(yaml.safe_dump({"delta": {"prompt_acc": 0.02}, "claims": [
        base, {**base, "id": "b", "revises": "a", "reason": " a world-chosen arm ", "concepts": ["x", "y"]}]}))
    revised = cl.load_protocol(path).claims[1]
    assert (revised.revises, revised.reason, revised.concepts) == ("a", "a world-chosen arm", ("x", "y"))


def test_claim_restricted_to_concepts_uses_only_their_units(tmp_path):
    """A claim with `concepts` (a held-out set) pairs and resamples only those concepts' units:
    its effect is the hand-computed mean over them, and the other concepts cannot move it."""
    held_out = ("b_circle", "c_heart", "d_square", "e_cross")
    cells = synthetic(0.05, concepts=("a_star", *held_out))
    cells[("a_star", "dco")] = {k: v - 0.5 for k, v in cells[("a_star", "db")].items()}  # not held-out
    write_tables(tmp_path, cells)
    path = tmp_path / "claims.yaml"
    protocol(path)
    raw = yaml.safe_load(path.read_text())
    raw["claims"].append({**copy.deepcopy(raw["claims"][0]), "id": "held_out", "revises": "dco_prompt",
                          "reason": "test", "concepts": list(held_out)})
    path.write_text(yaml.safe_dump(raw))
    diffs = [cells[(c, "dco")][k] - cells[(c, "db")][k] for c in held_out for k in cells[(c, "db")]]
    whole, revised = cl.evaluate(cl.load_protocol(path), cl.read_world_scores(tmp_path))
    assert revised.rows[0]["effect"] == pytest.approx(np.mean(diffs))
    assert revised.rows[0]["concepts"] == 4 and revised.rows[0]["units"] == 32
    assert revised.verdict == cl.HELD and whole.verdict != cl.HELD
    table = cl.claims_table([whole, revised])
    assert list(table["revises"]) == ["", "dco_prompt"] and list(table["reason"]) == ["", "test"]
    raw["claims"][1]["concepts"] = ["z_absent"]
    path.write_text(yaml.safe_dump(raw))
    assert cl.evaluate(cl.load_protocol(path), cl.read_world_scores(tmp_path))[1].verdict == cl.NOT_RUN


def test_each_claim_is_registered_at_the_commit_that_first_held_it(tmp_path):
    """Per claim: the first commit holding it; a later edit of the claim itself (not of its
    note) is flagged; a revision added later has its own, later commit; the report prints both."""
    import subprocess

    from dcobench.cli.claims import claim_registrations

    def git(*args):
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path,
                              check=True, capture_output=True, text=True).stdout.strip()

    git("init", "-q")
    path = tmp_path / "claims.yaml"
    protocol(path)
    assert claim_registrations(path) == {"dco_prompt": "uncommitted"}
    git("add", "claims.yaml")
    git("commit", "-qm", "register")
    first = git("rev-parse", "HEAD")
    raw = yaml.safe_load(path.read_text())
    raw["claims"][0]["note"] = "a comment added after the run"  # notes are commentary
    raw["claims"].append({**copy.deepcopy(raw["claims"][0]), "id": "revised", "revises": "dco_prompt",
                          "reason": "why", "concepts": ["b_circle"]})
    path.write_text(yaml.safe_dump(raw))
    git("commit", "-qam", "revision")
    second = git("rev-parse", "HEAD")
    assert claim_registrations(path) == {"dco_prompt": first, "revised": second}
    raw["claims"][0]["tests"][0]["metric"] = "subject_acc"  # tuning a registered claim
    raw["delta"]["subject_acc"] = 0.02
    path.write_text(yaml.safe_dump(raw))
    assert claim_registrations(path) == {"dco_prompt": f"{first} (changed since)", "revised": second}

    from types import SimpleNamespace

    from dcobench.cli import claims as cli
    from dcobench.report.claims import claims_section
    from dcobench.report.html import render_html

    git("checkout", "-q", "claims.yaml")
    write_tables(tmp_path / "results", synthetic(0.05))
    out = tmp_path / "claims.csv"
    cli.run(SimpleNamespace(claims=str(path), results=str(tmp_path / "results"), out=str(out)))
    section = claims_section(out)
    shown = section.items[0][0]
    assert list(shown["registered"]) == [first[:7], second[:7]]
    assert shown["statement"][1] == "DCO beats DB on prompt_acc (revises dco_prompt: why)"
    text = render_html("t", [section])
    assert f"1 at commit {first} (dco_prompt); 1 at commit {second} (revised)" in text
