"""The rules of app.documents.compliance_text on small texts, one rule per test (the fixture test is in
tests/integration/documents/test_compliance.py)."""

from __future__ import annotations

from app.documents.compliance_text import Source, obligation, requirements

HEADER = "SAMPLE RFP 12345 – Page {n} of 4"


def _pages(*bodies: str) -> list[str]:
    """PDF-like pages: a running header and footer around each body."""
    return [f"ACME AGENCY SOLICITATION\n{body}\n{HEADER.format(n=n)}" for n, body in enumerate(bodies, 1)]


def test_a_sentence_wrapped_over_a_page_break_keeps_its_first_page_without_the_running_lines() -> None:
    pages = _pages(
        "C.2 Scope\nThe Contractor shall provide support to all regional offices and to the",
        "headquarters building during business hours.\nC.3 Hours\nThe Contractor must staff the desk daily.",
        "Nothing binding here at all.",
        "Still nothing binding here.",
    )
    found = requirements([Source("rfp.pdf", pages)])
    assert [(r.text, r.page, r.section) for r in found] == [
        (
            "The Contractor shall provide support to all regional offices and to the headquarters building "
            "during business hours.",
            1,
            "C.2",
        ),
        ("The Contractor must staff the desk daily.", 2, "C.3"),
    ]


def test_government_obligations_definitions_recommendations_and_permissions_are_not_requirements() -> None:
    assert obligation("The Government will evaluate proposals on technical merit and price.") is None
    assert obligation("The Government shall not be liable for any proposal preparation costs.") is None
    assert obligation('In this PWS the word "shall" denotes a mandatory requirement.') is None
    assert obligation("The Contractor should propose ways to reduce contact volume.") is None
    assert obligation("Offerors may submit questions until the tenth of January.") is None
    assert obligation("The Contractor shall notify the Government within one hour.") == "shall"
    assert obligation("Each reference is required to include a telephone number.") == "is required to"
    assert obligation("The Contractor will provide a monthly report to the COR.") == "will provide"


def test_abbreviations_do_not_end_sentences() -> None:
    text = (
        "The Contractor shall work within the U.S. Government facilities, e.g. Building 5, from 8 a.m. "
        "until noon. The Offeror must sign the form."
    )
    found = requirements([Source("note.txt", [text], paged=False)])
    assert [r.text for r in found] == [
        "The Contractor shall work within the U.S. Government facilities, e.g. Building 5, from 8 a.m. until noon.",
        "The Offeror must sign the form.",
    ]
    assert found[0].page is None


def test_duplicates_across_documents_are_kept_once_where_first_seen_and_numbered_in_order() -> None:
    first = Source(
        "rfp.pdf", ["SECTION L – INSTRUCTIONS\nOfferors shall submit one electronic copy of the proposal."]
    )
    second = Source(
        "Notice description", ["Offerors shall submit one electronic copy of the proposal!"], paged=False
    )
    third = Source(
        "Notice description", ["Quotes must be valid for 90 days, see Section M.2 for details."], paged=False
    )
    found = requirements([first, second, third])
    assert [(r.id, r.source, r.section, r.type) for r in found] == [
        ("REQ-001", "rfp.pdf", "Section L", "Proposal submission"),
        ("REQ-002", "Notice description", "M.2", "Evaluation"),  # no heading: the section it cites
    ]


def test_a_second_sample_written_after_the_rules_scores_above_the_bar() -> None:
    from pathlib import Path

    from app.documents.extract import PDF, extract
    from tests.support.compliance_score import FIXTURES, marked, score

    pdf = extract(Path(FIXTURES / "rfq_data_center.pdf"), PDF)
    found = [
        {"text": r.text, "source": r.source, "page": r.page, "section": r.section}
        for r in requirements([Source("rfq_data_center.pdf", pdf.pages)])
    ]
    result = score(found, marked("rfq_data_center_expected.json"))
    print("\n" + result.report("compliance matrix of the data center RFQ"))
    # Known miss: "Key personnel may not be replaced ..." (a prohibition; "may not" is no obligation keyword).
    assert result.problems == [
        "missed: Key personnel may not be replaced without prior written approval of the Contracting Officer."
    ]
    assert result.precision >= 0.9 and result.recall >= 0.9 and result.location_accuracy >= 0.9
