"""Explanations that match the arithmetic: words, order and the basis follow the contributions."""

from __future__ import annotations

import re

import pytest

from sleuth.agent.fusion import FusionWeights, contributions
from sleuth.agent.verdict import BackendIdentity, Evidence, Verdict
from sleuth.agent.weighing import (
    MODERATE,
    NEGLIGIBLE,
    NOT_COUNTED,
    UNRECORDED,
    WEAK,
    deciding_provenance,
    effect,
    effects,
    ranked,
    recorded,
)
from tests.agent.conftest import A1111, composite_png, png_with_text
from tests.conftest import photo

WEAK_BASIS = "no provenance data decides it"
TOWARDS = {"ai": "towards AI generation: ", "real": "towards a real capture: "}


def mixed_verdict(**update: object) -> Verdict:
    """A verdict whose tools' own readings disagree with what the fusion made of them.

    The spectrum reads "ai" with score 1.0 but has no term in the fusion; the colour
    reads "neutral" but carries the largest contribution, towards AI; the noise term is
    negligible although the tool reads "ai".
    """
    evidence = [
        Evidence(id="E1", tool="spectrum", summary="A lattice.", score=1.0, direction="ai"),
        Evidence(id="E2", tool="colour", summary="Saturated.", direction="neutral"),
        Evidence(id="E3", tool="noise", summary="Flat.", score=0.9, direction="ai"),
        Evidence(id="E4", tool="dimensions", summary="4:3 frame.", direction="neutral"),
        Evidence(
            id="E5", tool="provenance", summary="Nothing.", direction="neutral", kind="provenance"
        ),
    ]
    fields: dict[str, object] = {
        "case_id": "0123456789abcdef-01234567",
        "image_id": "0" * 64,
        "label": "ai_generated",
        "p_ai": 0.8,
        "explanation": "See [E2].",
        "evidence": evidence,
        "contributions": {"E2": 1.8, "E3": 0.01, "E4": -0.6, "E5": -0.2},
        "p_signals": 0.8,
        "abstain_band": (0.35, 0.65),
        "stopped": "concluded",
        "backend": BackendIdentity(provider="offline", model="offline-v1"),
    }
    return Verdict(**(fields | update))


def listed(explanation: str, side: str) -> list[str]:
    """The evidence ids the explanation names as moving the probability to one side."""
    line = next((x for x in explanation.splitlines() if TOWARDS[side] in x), "")
    return re.findall(r"\[(E\d+)\]", line)


# -- the words -------------------------------------------------------------------------


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_words_follow_the_sign_and_the_size(sign):
    side = "ai" if sign > 0 else "real"
    sizes = [NEGLIGIBLE, (NEGLIGIBLE + WEAK) / 2, WEAK, (WEAK + MODERATE) / 2, MODERATE, 5.0]
    found = [effect(sign * size) for size in sizes]
    assert all(f.towards == side and f.counts for f in found)
    strengths = ["weak", "weak", "moderate", "moderate", "strong", "strong"]
    assert [f.strength for f in found] == strengths
    side_words = "towards AI" if sign > 0 else "towards a real capture"
    assert all(f.words == f"{side_words} ({f.strength})" for f in found)
    assert not effect(sign * NEGLIGIBLE * 0.99).counts


def test_no_term_and_a_zero_term_do_not_count_and_never_point_anywhere():
    for value in (None, 0.0, NEGLIGIBLE / 2, -NEGLIGIBLE / 2):
        found = effect(value)
        assert found.towards == "none" and found.strength is None and not found.counts
        assert "AI" not in found.words and "real" not in found.words
    assert effect(None).words == effect(0.0).words == NOT_COUNTED
    assert effect(NEGLIGIBLE / 2).words != NOT_COUNTED  # it counts, too little to matter


def test_items_are_ranked_by_absolute_contribution_ties_in_order():
    verdict = mixed_verdict()
    order = [e.id for e in ranked(verdict.evidence, verdict.contributions)]
    assert order == ["E2", "E4", "E5", "E3", "E1"]
    assert [e.id for e in ranked(verdict.evidence, None)] == ["E1", "E2", "E3", "E4", "E5"]
    found = effects(verdict.evidence, verdict.contributions)
    assert found["E1"].words == NOT_COUNTED and found["E2"].towards == "ai"
    assert found["E3"].towards == "none" and found["E4"].towards == "real"


def test_absent_metadata_never_decides_however_it_is_weighed():
    verdict = mixed_verdict()
    assert deciding_provenance(verdict.evidence, verdict.contributions) == []
    declared = verdict.evidence[4].model_copy(update={"direction": "ai"})
    items = [*verdict.evidence[:4], declared]
    assert deciding_provenance(items, {"E5": 3.0}) == [declared]
    assert deciding_provenance(items, {"E5": -3.0}) == []  # the fusion reads it the other way
    assert deciding_provenance(items, {"E5": (WEAK + MODERATE) / 2}) == []  # a hint only
    assert deciding_provenance(items, {"E5": NEGLIGIBLE / 2}) == []


def test_a_verdict_stored_before_contributions_loads_and_is_weighed_only_if_it_can_be():
    stored = mixed_verdict().model_dump(mode="json")
    del stored["contributions"]
    current = FusionWeights.load().version
    same = Verdict.model_validate(stored | {"versions": {"fusion": current}})
    assert same.contributions is None
    assert recorded(same) == contributions(same.evidence, FusionWeights.load())
    older = Verdict.model_validate(stored | {"versions": {"fusion": current + "-older"}})
    assert recorded(older) is None
    assert set(effects(older.evidence, recorded(older)).values()) == {UNRECORDED}


# -- the offline explanation, through the real graph ------------------------------------


def check_explanation_follows_contributions(verdict: Verdict) -> None:
    weights = verdict.contributions
    assert weights is not None and set(weights) <= {e.id for e in verdict.evidence}
    towards_ai, towards_real = (
        listed(verdict.explanation, "ai"),
        listed(verdict.explanation, "real"),
    )
    assert all(weights[k] >= NEGLIGIBLE for k in towards_ai), (towards_ai, weights)
    assert all(weights[k] <= -NEGLIGIBLE for k in towards_real), (towards_real, weights)
    for ids in (towards_ai, towards_real):
        sizes = [abs(weights[k]) for k in ids]
        assert sizes == sorted(sizes, reverse=True)
    named = set(towards_ai) | set(towards_real)
    for item in verdict.evidence:  # a finding that does not move p_ai is named on no side
        if abs(weights.get(item.id, 0.0)) < NEGLIGIBLE:
            assert item.id not in named
    assert "log-odds" not in verdict.explanation  # numbers stay on the cards


def test_statistics_alone_are_called_weak_hints(session):
    verdict = session.analyze(composite_png())
    check_explanation_follows_contributions(verdict)
    assert not deciding_provenance(verdict.evidence, verdict.contributions)
    assert WEAK_BASIS in verdict.explanation


def test_a_declared_generator_decides_and_is_not_called_weak(session):
    verdict = session.analyze(
        png_with_text(photo(4, (320, 240)), {"parameters": "a cat\n" + A1111})
    )
    check_explanation_follows_contributions(verdict)
    deciding = deciding_provenance(verdict.evidence, verdict.contributions)
    assert deciding and all(verdict.contributions[e.id] > 0 for e in deciding)
    assert deciding[0].id in listed(verdict.explanation, "ai")
    assert WEAK_BASIS not in verdict.explanation


def test_a_follow_up_answer_names_the_same_effect_as_the_verdict(session):
    verdict = session.analyze(composite_png())
    answer = session.ask(verdict.case_id, "what did the spectrum show?")
    found = effects(verdict.evidence, verdict.contributions)
    rows = [line for line in answer.answer.splitlines() if line.startswith("- [E")]
    assert rows
    for line in rows:
        key = re.match(r"- \[(E\d+)\]", line).group(1)
        words = found[key].words if key in found else NOT_COUNTED
        assert f"effect: {words}" in line
        assert "points to" not in line
