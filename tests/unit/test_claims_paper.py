"""The claims say what the paper says: every claim cites its section and number, and each
direction a claim predicts is checked against the paper's own numbers (data/paper_values.csv)
wherever the paper gives them."""

import re
from pathlib import Path

import pandas as pd
import pytest

from dcobench.analysis import claims as cl
from dcobench.analysis.claims_paper import paper_directions
from dcobench.report.paper import read_paper_values

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def protocol() -> cl.Protocol:
    return cl.load_protocol(REPO / "config" / "world_claims.yaml")


@pytest.fixture(scope="module")
def directions(protocol) -> pd.DataFrame:
    return paper_directions(protocol, read_paper_values(REPO / "data" / "paper_values.csv"))


def test_every_claim_cites_the_papers_section_and_number(protocol):
    for claim in protocol.claims:
        assert re.search(r"§\d|App\. [A-Z]", claim.paper_ref), (claim.id, claim.paper_ref)
        assert re.search(r"(Fig\. \d|Table \d)", claim.paper_ref), (claim.id, claim.paper_ref)


def test_merge_orders_style_part_contradicts_table_1(directions):
    """The check catches what the review found: merge_order predicts DCO Merge > DB ZipLoRA >
    DB Merge on style, and Table 1 has 0.651 < 0.662 < 0.672."""
    rows = directions[directions["claim"] == "merge_order"].set_index("test")
    style = rows[rows["paper_metric"] == "siglip_image"]
    assert len(style) == 2 and not style["agrees"].any()
    assert style["paper_a"].tolist() == [0.651, 0.662] and style["paper_b"].tolist() == [0.662, 0.672]
    assert rows[rows["paper_metric"] != "siglip_image"]["agrees"].all()  # subject and prompt agree


def test_every_claim_with_paper_numbers_is_checked_and_agrees_or_is_revised(protocol, directions):
    """Claims that contradict the paper are registered history, each revised by a protocol-2
    claim that agrees with every number of the paper; no protocol-2 claim contradicts it; the
    claims on arms the paper reports (merges, prior preservation) all have rows."""
    checked = set(directions["claim"])
    assert {"prior_preservation", "merge_order", "merge_order_ni", "merge_order_sv_ni"} <= checked
    against = set(directions.loc[~directions["agrees"], "claim"])
    by_id = {c.id: c for c in protocol.claims}
    assert all(by_id[c].protocol == 1 for c in against), against
    for old in against:
        fixes = [c for c in protocol.claims if c.revises == old and c.protocol >= 2]
        assert fixes, f"{old} contradicts the paper and has no protocol-2 revision"
        for fix in fixes:
            assert directions.loc[directions["claim"] == fix.id, "agrees"].all(), fix.id
            ni = [t for t in fix.tests if t.hypothesis == "non_inferiority"]
            assert ni and all(t.delta_key in protocol.margins for t in ni)
    assert against == {"merge_order", "merge_order_proxy", "merge_order_b01",
                       "merge_order_proxy_b01", "merge_order_sv", "merge_order_proxy_sv"}


def test_margin_is_stated_and_admits_the_papers_own_gap(protocol, directions):
    """The non-inferiority margin on SigLIP style is wider than the paper's largest style gap
    (DCO Merge − DB Merge = −0.021), else "competitive" would fail on the paper's own numbers."""
    assert protocol.margins["siglip_image"] > 0.672 - 0.651
    assert protocol.margins["style_acc"] > protocol.deltas["style_acc"]
    ni = directions[directions["hypothesis"] == "non_inferiority"]
    assert (ni["predicted_above"] == -protocol.margins["siglip_image"]).all()


def test_paper_citations_do_not_re_register_a_claim(tmp_path):
    """paper_ref and paper_arms are citations: adding them to a registered claim leaves it
    equal to its registered version (claim_registrations compares claims)."""
    import yaml

    base = {"id": "a", "statement": "s", "group": "subject",
            "tests": [{"kind": "difference", "a": "dco", "b": "db", "metric": "prompt_acc"}]}
    cited = {**base, "paper_ref": "§5.1, Fig. 1", "paper_arms": {"dco": "dco"}}
    parsed = [cl.parse_protocol({"delta": {"prompt_acc": 0.02}, "claims": [c]}, "x").claims[0]
              for c in (base, cited)]
    assert parsed[0] == parsed[1] and parsed[1].paper_ref == "§5.1, Fig. 1"
    tested = {**base, "protocol": 2}
    other = cl.parse_protocol({"delta": {"prompt_acc": 0.02}, "claims": [tested]}, "x").claims[0]
    assert other != parsed[0]  # the protocol version is part of the claim
    assert yaml.safe_dump(cited)  # (a plain mapping, as the file holds it)
