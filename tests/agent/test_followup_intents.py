"""Follow-up questions the offline analyst understands, and the ones it says it does not."""

import re

import numpy as np
import pytest
from typer.testing import CliRunner

from sleuth.agent.backends.intents import evidence_ids, read_intent, read_region, vision_topics
from sleuth.agent.backends.offline import _enlarging
from sleuth.agent.weighing import NEGLIGIBLE
from sleuth.servers.mcp.untrusted import mark
from sleuth.tools import Box, ToolRegistry
from sleuth.tools.builtin.zoom import zoom_crop
from tests.agent.conftest import A1111, composite_png, png_with_text
from tests.conftest import photo

SIZE = (640, 480)
CANDIDATES = [Box(x0=10, y0=20, x1=110, y1=120), Box(x0=200, y0=200, x1=300, y1=260)]


@pytest.fixture(scope="module")
def registry():
    return ToolRegistry.discover()


def intent_of(question, registry, candidates=CANDIDATES):
    tools = registry.named_in(question)
    return read_intent(question, tools=tools, candidates=candidates, size=SIZE)


def cited(text):
    """Evidence ids cited in ``text``, in order of first citation."""
    return list(dict.fromkeys(re.findall(r"\[(E\d+)\]", text)))


# -- reading the question (pure) ------------------------------------------------------


@pytest.mark.parametrize(
    "question",
    ["why?", "Explain", "what made you say that?", "Summarise the evidence.", "how sure are you?"],
)
def test_why_questions(question, registry):
    intent = intent_of(question, registry)
    assert intent.kind == "why" and intent.understood


@pytest.mark.parametrize(
    ("question", "ids"),
    [
        ("E7", ("E7",)),
        ("what is e12?", ("E12",)),
        ("tell me more about E3 and E5", ("E3", "E5")),
        ("and E03, e3 again?", ("E3",)),
    ],
)
def test_evidence_ids(question, ids, registry):
    intent = intent_of(question, registry)
    assert intent.kind == "evidence" and intent.evidence_ids == ids


def test_evidence_ids_need_whole_words():
    assert evidence_ids("e2e tests, see2 and 1e5") == ()


@pytest.mark.parametrize(
    ("question", "tools", "box"),
    [
        ("what did ELA show in box 2?", ("ela",), (200, 200, 300, 260)),
        ("noise on region 1", ("noise",), (10, 20, 110, 120)),
        ("ela on the top left quarter", ("ela",), (0, 0, 320, 240)),
        ("noise in the bottom-right quadrant", ("noise",), (320, 240, 640, 480)),
        ("ela on the upper half", ("ela",), (0, 0, 640, 240)),
        ("ela on the right side", ("ela",), (320, 0, 640, 480)),
        ("ela in the centre", ("ela",), (160, 120, 480, 360)),
        ("ela on 10,10,200,200", ("ela",), (10, 10, 200, 200)),
        ("ela on [10, 20, 300, 400]", ("ela",), (10, 20, 300, 400)),
        ("noise on (10,20)-(300,400)", ("noise",), (10, 20, 300, 400)),
        ("ela left", ("ela",), (0, 0, 320, 480)),  # a bare side counts with a tool
    ],
)
def test_a_tool_on_a_region(question, tools, box, registry):
    intent = intent_of(question, registry)
    assert intent.kind == "tools" and intent.tools == tools
    assert intent.region.as_tuple() == box and intent.problem is None


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("ela on 0,0,700,10", "outside"),
        ("ela on 300,10,200,200", "outside"),  # empty
        ("what about box 42?", "no_box"),
    ],
)
def test_regions_that_cannot_be_used(question, kind, registry):
    intent = intent_of(question, registry)
    assert intent.region is None and intent.problem.kind == kind
    assert intent.understood  # understood, and answered with what is wrong


def test_a_bare_side_word_without_a_tool_names_no_region():
    assert read_region("what is left to check?", candidates=[], size=SIZE) == (None, None)


@pytest.mark.parametrize(
    ("question", "box", "defaulted"),
    [
        ("zoom on box 2", (200, 200, 300, 260), False),
        ("zoom on the top left quarter", (0, 0, 320, 240), False),
        ("the left half", (0, 0, 320, 480), False),  # a region alone is a zoom
        ("zoom", (10, 20, 110, 120), True),  # no region: candidate 1, said so
        ("give me a close-up", (10, 20, 110, 120), True),
    ],
)
def test_zoom(question, box, defaulted, registry):
    intent = intent_of(question, registry)
    assert intent.kind == "zoom" and intent.region.as_tuple() == box
    assert intent.defaulted == defaulted


def test_a_zoom_without_a_region_or_candidates_is_a_problem(registry):
    intent = intent_of("zoom please", registry, candidates=[])
    assert intent.kind == "zoom" and intent.region is None
    assert intent.problem.kind == "no_candidates"


@pytest.mark.parametrize(
    "question",
    ["is there C2PA?", "any EXIF?", "which generator made it?", "is it watermarked?", "metadata?"],
)
def test_provenance_questions(question, registry):
    intent = intent_of(question, registry)
    assert intent.kind == "provenance" and intent.region is None


@pytest.mark.parametrize(
    "question",
    ["what would change the verdict?", "what would it take to flip it?", "could it change?"],
)
def test_what_would_change_it(question, registry):
    assert intent_of(question, registry).kind == "change"


@pytest.mark.parametrize(
    ("question", "topics"),
    [
        ("what about the hands?", ("hands",)),
        ("zoom on the face", ("faces",)),
        ("look at her fingers", ("hands",)),
        ("what does the sign say?", ("text",)),
        ("does it look natural?", ("whether it looks natural",)),
        ("is the person real?", ("people",)),
    ],
)
def test_what_needs_a_vision_model(question, topics, registry):
    intent = intent_of(question, registry)
    assert intent.kind == "vision" and intent.vision == topics and not intent.understood
    assert intent.region is None and not intent.tools


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("zoom on box 2: do the hands look right?", "zoom"),
        ("ela on the left half, near the face", "tools"),
        ("tell me about E3 and the eyes", "evidence"),
    ],
)
def test_an_explicit_part_is_served_and_the_vision_part_is_not_understood(question, kind, registry):
    intent = intent_of(question, registry)
    assert intent.kind == kind and intent.vision and not intent.understood


def test_signs_of_editing_are_not_text():
    assert vision_topics("any signs of editing? a sign of AI?") == ()


@pytest.mark.parametrize("question", ["hello", "what is left?", "thanks", "bottom line?"])
def test_anything_else_is_not_understood(question, registry):
    intent = intent_of(question, registry)
    assert intent.kind == "unknown" and not intent.understood


def test_the_zoom_target_enlarges_a_region_larger_than_the_default(registry):
    region = Box(x0=0, y0=0, x1=1000, y1=750)  # the top left quarter of 2000x1500
    args = _enlarging(registry.get("zoom"), region)
    assert args["target"] > 672
    source = region.expand(0.15, 2000, 1500)
    crop, scale = zoom_crop(np.zeros((1500, 2000, 3), np.uint8), source, target=args["target"])
    assert scale > 1.0 and crop.shape[1] >= region.width and crop.shape[0] >= region.height


# -- answers, end to end on the offline analyst --------------------------------------


def test_why_lists_only_what_counts_largest_first(session):
    verdict = session.analyze(
        png_with_text(photo(2, (320, 240)), {"parameters": "a cat\n" + A1111})
    )
    answer = session.ask(verdict.case_id, "why?")
    ids = cited(answer.answer)
    weights = verdict.contributions
    assert ids and answer.understood
    assert all(abs(weights.get(i, 0.0)) >= NEGLIGIBLE for i in ids)  # no neutral item
    assert [abs(weights[i]) for i in ids] == sorted((abs(weights[i]) for i in ids), reverse=True)
    counting = [e.id for e in verdict.evidence if abs(weights.get(e.id, 0.0)) >= NEGLIGIBLE]
    assert ids == sorted(counting, key=lambda i: -abs(weights[i]))[:4]
    provenance = [e.id for e in verdict.evidence if e.tool == "provenance" and e.direction == "ai"]
    assert ids[0] in provenance and "declares" in answer.answer
    assert "does not count" not in answer.answer and "does not move" not in answer.answer


def test_tell_me_more_cites_only_that_item(session):
    verdict = session.analyze(composite_png())
    answer = session.ask(verdict.case_id, "tell me more about E2")
    assert set(cited(answer.answer)) == {"E2"} and [e.id for e in answer.evidence] == ["E2"]
    assert verdict.evidence[1].summary in answer.answer and "Effect:" in answer.answer
    assert answer.understood


def test_an_unknown_id_says_which_exist(session):
    verdict = session.analyze(composite_png())
    answer = session.ask(verdict.case_id, "tell me more about E999")
    last = verdict.evidence[-1].id
    assert "no E999" in answer.answer and f"from E1 to {last}" in answer.answer


def test_hands_need_a_vision_model_and_run_nothing(session):
    verdict = session.analyze(composite_png())
    answer = session.ask(verdict.case_id, "what about the hands?")
    case = session.case(verdict.case_id)
    assert not answer.understood and not answer.evidence
    assert "no vision model" in answer.answer and "openai" in answer.answer
    assert "zoom on box 2" in answer.answer  # how to point at a region yourself
    assert not cited(answer.answer)  # no evidence dump
    state = session.store.state(verdict.case_id)
    asked = state["steps"][len(verdict.steps) :]
    assert asked and not [s for s in asked if s["kind"] == "tool"]  # no tool ran
    assert len(state["evidence"]) == len(verdict.evidence)
    assert case.answers[-1].understood is False  # stored with the case
    assert mark(answer)["understood"] is False  # MCP's structured content


def test_zoom_on_the_face_zooms_nothing(session):
    verdict = session.analyze(composite_png())
    answer = session.ask(verdict.case_id, "zoom on the face")
    assert not answer.understood and not answer.evidence
    state = session.store.state(verdict.case_id)
    assert not [e for e in state["evidence"] if e["tool"] == "zoom" and e["region"] is None]
    assert len(state["evidence"]) == len(verdict.evidence)


@pytest.mark.parametrize("question", ["zoom on box 1", "zoom on the top left quarter"])
def test_a_zoom_enlarges_the_region(session, question):
    verdict = session.analyze(composite_png())
    answer = session.ask(verdict.case_id, question)
    (crop,) = answer.evidence
    region = verdict.regions[0] if "box" in question else Box(x0=0, y0=0, x1=320, y1=240)
    assert crop.tool == "zoom" and crop.region == region and answer.understood
    assert crop.metrics["width"] >= region.width and crop.metrics["height"] >= region.height
    assert crop.metrics["scale"] > 1.0


def test_a_zoom_without_a_region_takes_box_1_and_says_so(session):
    verdict = session.analyze(composite_png())
    answer = session.ask(verdict.case_id, "zoom")
    assert [e.region for e in answer.evidence] == [verdict.regions[0]]
    assert "box 1" in answer.answer and "You named no region" in answer.answer


def test_ela_on_a_pixel_box(session):
    verdict = session.analyze(composite_png())
    answer = session.ask(verdict.case_id, "ela on 10,10,200,200")
    assert answer.evidence and {e.tool for e in answer.evidence} == {"ela"}
    assert {e.region.as_tuple() for e in answer.evidence} == {(10, 10, 200, 200)}


def test_a_box_outside_the_image_is_a_clear_message(session):
    verdict = session.analyze(composite_png())
    answer = session.ask(verdict.case_id, "ela on [0, 0, 900, 10]")
    assert not answer.evidence and answer.understood
    assert "[0, 0, 900, 10] does not fit the image" in answer.answer
    assert "640x480" in answer.answer and "x1 <= 640" in answer.answer


def test_what_would_change_the_verdict_names_the_band_edges(session):
    verdict = session.analyze(composite_png())
    answer = session.ask(verdict.case_id, "what would change the verdict?")
    low, high = verdict.abstain_band
    assert f"{low:.2f}" in answer.answer and f"{high:.2f}" in answer.answer
    assert "log-odds" in answer.answer and "signed C2PA manifest" in answer.answer
    assert "Generator metadata" in answer.answer and answer.understood


def test_provenance_questions_answer_with_the_provenance_findings(session):
    verdict = session.analyze(composite_png())
    answer = session.ask(verdict.case_id, "is there C2PA or a watermark?")
    provenance = {e.id for e in verdict.evidence if e.tool == "provenance"}
    assert provenance and set(cited(answer.answer)) == provenance


def test_an_unknown_question_says_what_can_be_asked(session):
    verdict = session.analyze(composite_png())
    answer = session.ask(verdict.case_id, "hello there")
    assert not answer.understood and not answer.evidence
    assert "did not understand" in answer.answer and '"why?"' in answer.answer


def test_sleuth_ask_prints_a_line_when_not_understood(settings, monkeypatch):
    from sleuth.api import open_session
    from sleuth.cli import app

    with open_session(settings) as session:
        case_id = session.analyze(composite_png()).case_id
    monkeypatch.setenv("SLEUTH_DATA_DIR", str(settings.data_dir))
    result = CliRunner().invoke(app, ["ask", case_id, "are the eyes symmetric?"])
    assert result.exit_code == 0, result.output
    assert "not understood" in result.output and "no vision model" in result.output
    understood = CliRunner().invoke(app, ["ask", case_id, "why?"])
    assert "not understood" not in understood.output
