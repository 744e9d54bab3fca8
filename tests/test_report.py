"""The HTML case report and the annotated image: self-contained, escaped, complete."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin
from scipy import ndimage

from sleuth.agent.verdict import Case, Evidence
from sleuth.agent.weighing import NEGLIGIBLE, NOT_COUNTED
from sleuth.api import open_session
from sleuth.present.annotate import EVIDENCE_COLOUR, LABEL_COLOUR, REGION_COLOUR, annotate
from sleuth.present.report import ARTIFACT_MAX_SIDE, render_report
from sleuth.settings import Settings
from sleuth.tools import Box
from tests.agent.test_weighing import mixed_verdict
from tests.conftest import encode, photo

PAYLOAD = "<script>alert(1)</script>"
QUESTION = '"><img src=x onerror=alert(2)> what did ELA show in box 1?'
GENERATOR = "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 320x240, Model: sd15"


def composite() -> bytes:
    """A noisy photo-like PNG with a patch pasted from an upsampled copy of itself."""
    base = photo(7, (640, 480))
    half = Image.fromarray(base).resize((320, 240), Image.Resampling.BICUBIC)
    upsampled = np.asarray(half.resize((640, 480), Image.Resampling.BICUBIC))
    out = base.copy()
    out[150:270, 200:360] = upsampled[150:270, 200:360]
    return encode(out)


def with_payload() -> bytes:
    """A PNG whose generator-settings text chunk carries markup."""
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", f"{PAYLOAD}\n{GENERATOR}")
    buffer = io.BytesIO()
    Image.fromarray(photo(8, (320, 240))).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def investigator(tmp_path_factory):
    with open_session(Settings(data_dir=tmp_path_factory.mktemp("data"))) as s:
        yield s


def rendered(investigator, case_id: str, artifact=None) -> tuple[Case, str]:
    case = investigator.case(case_id)
    artifact = artifact or (lambda name: investigator.files.artifact_path(case_id, name))
    return case, render_report(case, investigator.image(case_id), artifact)


@pytest.fixture(scope="module")
def composite_case(investigator) -> tuple[Case, str]:
    verdict = investigator.analyze(composite())
    investigator.ask(verdict.case_id, QUESTION)
    investigator.ask(verdict.case_id, "zoom on the left half")
    return rendered(investigator, verdict.case_id)


@pytest.fixture(scope="module")
def payload_case(investigator) -> tuple[Case, str]:
    return rendered(investigator, investigator.analyze(with_payload()).case_id)


def evidence_of(case: Case) -> list[Evidence]:
    items = {e.id: e for e in case.verdict.evidence}
    for answer in case.answers:
        items.update({e.id: e for e in answer.evidence})
    return list(items.values())


# -- the report ------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["composite_case", "payload_case"])
def test_the_report_runs_nothing_and_requests_nothing(request, which):
    _, page = request.getfixturevalue(which)
    assert "<script" not in page.lower()
    tags = re.findall(r"<[^>]*>", page)
    assert not [t for t in tags if re.search(r"\son\w+\s*=", t)]  # no event handlers
    attribute = re.compile(r"""\s(?:src|href|srcset|action)\s*=\s*["']?([^"'\s>]*)""", re.I)
    references = [ref for tag in tags for ref in attribute.findall(tag)]
    assert references
    for ref in references:
        assert ref.startswith(("data:image/jpeg;base64,", "data:image/png;base64,", "#ev-")), ref
    assert not re.search(r"url\(|@import", page, re.IGNORECASE)
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page).group(1)
    csp = csp.replace("&#x27;", "'")
    for directive in ("default-src 'none'", "img-src data:", "style-src 'unsafe-inline'"):
        assert directive in csp


def test_text_from_the_image_file_is_escaped(payload_case):
    case, page = payload_case
    carried = [e for e in case.verdict.evidence if PAYLOAD in str(e.model_dump())]
    assert carried and carried[0].tool == "provenance", "the payload did not reach the evidence"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert PAYLOAD not in page and "<script" not in page


def test_a_follow_up_question_is_escaped(composite_case):
    case, page = composite_case
    assert case.answers[0].question == QUESTION
    assert "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in page
    assert "<img src=x" not in page


def test_the_header_names_the_verdict_and_how_it_was_reached(composite_case):
    case, page = composite_case
    verdict = case.verdict
    header = page.split("</header>", 1)[0]
    for text in (verdict.label, f"{verdict.p_ai:.3f}", f"{verdict.p_signals:.3f}", "0.35 – 0.65"):
        assert text in header
    assert verdict.stopped in header and f"offline:{verdict.backend.model}" in header


def test_every_evidence_item_appears_with_every_artifact_embedded(investigator, composite_case):
    case, page = composite_case
    items = evidence_of(case)
    assert len(items) > len(case.verdict.evidence)  # the follow-ups added evidence
    artifacts = 0
    for item in items:
        assert f'id="ev-{item.id}"' in page
        for name in item.artifacts:
            data = investigator.files.artifact_path(case.case_id, name).read_bytes()
            assert "data:image/png;base64," + base64.b64encode(data).decode() in page, name
            artifacts += 1
    assert artifacts >= 3
    assert page.count('<tr class="') == len(case.verdict.steps)


def test_the_regions_are_listed_and_the_photo_is_a_jpeg(composite_case):
    case, page = composite_case
    regions = case.verdict.regions
    assert regions, "the survey proposed no regions"
    listed = re.search(r"<ol class='regions'>(.*?)</ol>", page).group(1)
    assert listed.count("<li>") == len(regions)
    assert f"box 1 ({regions[0].x0}, {regions[0].y0}, {regions[0].x1}, {regions[0].y1})" in listed
    (photo_url,) = re.findall(r'src="data:image/jpeg;base64,([^"]+)"', page)
    drawn = Image.open(io.BytesIO(base64.b64decode(photo_url)))
    assert drawn.format == "JPEG" and drawn.size == (640, 480)


def test_a_missing_artifact_is_shown_as_missing(investigator, composite_case, tmp_path):
    case, _ = composite_case
    victim = next(name for e in case.verdict.evidence for name in e.artifacts)

    def artifact(name: str) -> Path:
        if name == victim:
            return tmp_path / "gone" / name
        return investigator.files.artifact_path(case.case_id, name)

    _, page = rendered(investigator, case.case_id, artifact)
    figure = re.search(rf"<figure><figcaption>{re.escape(victim)} (.*?)</figcaption>", page)
    assert figure and figure.group(1) == '<b class="missing">missing</b>'
    assert page.count("data:image/png;base64,") >= 2  # the others are still there


def test_big_artifacts_are_shrunk_and_broken_ones_marked(investigator, composite_case, tmp_path):
    case, _ = composite_case
    Image.new("L", (3000, 1500), 128).save(tmp_path / "big.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    evidence = [Evidence(id="E1", tool="ela", summary="s", artifacts=["big.png", "broken.png"])]
    verdict = case.verdict.model_copy(update={"evidence": evidence})
    edited = case.model_copy(update={"verdict": verdict, "answers": []})
    page = render_report(edited, investigator.image(case.case_id), lambda name: tmp_path / name)
    (url,) = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert Image.open(io.BytesIO(base64.b64decode(url))).size == (ARTIFACT_MAX_SIDE, 512)
    assert re.search(r"broken\.png <b class=\"missing\">unreadable</b>", page)


def test_an_interrupted_case_still_renders(investigator, composite_case):
    case, _ = composite_case
    interrupted = Case(case_id=case.case_id, image_id=case.image_id, status="interrupted")
    page = render_report(interrupted, investigator.image(case.case_id), lambda name: Path(name))
    assert "interrupted (no verdict yet)" in page and "<script" not in page


CARD = re.compile(
    r'<article class="evidence" id="ev-(E\d+)">\n<h3>.*?\n<b class=\'dir-(\w+)\'>(.*?)</b></h3>'
)


def cards(page: str) -> list[tuple[str, str, str]]:
    """(evidence id, the badge's side, its words) of every evidence card, in page order."""
    return CARD.findall(page)


def test_cards_follow_the_contributions_not_the_tools_own_reading(investigator, composite_case):
    case, _ = composite_case
    verdict = mixed_verdict()
    edited = case.model_copy(update={"verdict": verdict, "answers": []})
    page = render_report(edited, investigator.image(case.case_id), lambda name: Path(name))
    found = {key: (side, words) for key, side, words in cards(page)}
    assert [key for key, _, _ in cards(page)] == ["E2", "E4", "E5", "E3", "E1"]
    assert found["E1"] == ("none", NOT_COUNTED)  # the spectrum's own "ai, score 1.0"
    assert found["E2"][0] == "ai" and found["E2"][1].startswith("towards AI (")  # colour
    assert found["E3"][0] == "none"  # the noise reads "ai", but its term is negligible
    assert found["E4"][0] == found["E5"][0] == "real"
    assert "<th>tool&#x27;s own score</th><td>1.000</td>" in page
    assert "<th>direction</th>" not in page


def test_the_cards_of_a_case_are_ordered_by_contribution(composite_case):
    case, page = composite_case
    weights = case.verdict.contributions
    shown = cards(page)
    first = [key for key, _, _ in shown[: len(case.verdict.evidence)]]
    assert sorted(first) == sorted(e.id for e in case.verdict.evidence)
    sizes = [abs(weights.get(key, 0.0)) for key in first]
    assert sizes == sorted(sizes, reverse=True)
    for key, side, _ in shown:
        c = weights.get(key, 0.0)
        assert side == ("ai" if c >= NEGLIGIBLE else "real" if c <= -NEGLIGIBLE else "none")
    later = [side for key, side, _ in shown[len(first) :]]
    assert later and set(later) == {"none"}  # follow-up evidence does not count in p_ai


# -- the annotated image ---------------------------------------------------------------

GREY = 128
REGIONS = [
    Box(x0=40, y0=60, x1=160, y1=140),
    Box(x0=220, y0=40, x1=380, y1=120),
    Box(x0=120, y0=190, x1=300, y1=290),
]


def flat(width: int = 400, height: int = 300) -> np.ndarray:
    return np.full((height, width, 3), GREY, np.uint8)


def colour_at(image: Image.Image, x: int, y: int) -> tuple[int, int, int]:
    return tuple(int(c) for c in np.asarray(image)[y, x])


def mask_of(image: Image.Image, colour: tuple[int, int, int]) -> np.ndarray:
    return np.all(np.asarray(image) == colour, axis=2)


@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_one_numbered_box_per_region(n):
    drawn = annotate(flat(), REGIONS[:n])
    _, boxes = ndimage.label(mask_of(drawn, REGION_COLOUR))
    assert boxes == n
    for box in REGIONS[:n]:
        mid_x, mid_y = (box.x0 + box.x1) // 2, (box.y0 + box.y1) // 2
        for x, y in ((box.x0, mid_y), (box.x1 - 1, mid_y), (mid_x, box.y0), (mid_x, box.y1 - 1)):
            assert colour_at(drawn, x, y) == REGION_COLOUR, (box, x, y)
        assert colour_at(drawn, mid_x, mid_y) == (GREY,) * 3  # outlines only
        label = mask_of(drawn, LABEL_COLOUR)[box.y0 - 30 : box.y0, box.x0 : box.x0 + 40]
        assert label.any(), f"no label above {box}"
    assert mask_of(drawn, LABEL_COLOUR).any() == (n > 0)


def test_box_numbers_follow_the_order_of_the_regions():
    first, second = annotate(flat(), REGIONS[:2]), annotate(flat(), REGIONS[1::-1])
    corner = REGIONS[0]
    patch = (corner.x0, corner.y0 - 30, corner.x0 + 40, corner.y0)
    assert first.crop(patch).tobytes() != second.crop(patch).tobytes()  # "1" versus "2"
    assert annotate(flat(), REGIONS[:2]).tobytes() == first.tobytes()  # deterministic


def test_big_images_are_downscaled_with_their_boxes():
    rgb = flat(3200, 2400)
    region, evidence = Box(x0=800, y0=800, x1=1600, y1=1600), Box(x0=2000, y0=400, x1=3000, y1=2000)
    drawn = annotate(rgb, [region], evidence_boxes=[evidence], max_side=800)
    assert drawn.size == (800, 600)
    assert (
        colour_at(drawn, 200, 300) == REGION_COLOUR and colour_at(drawn, 399, 300) == REGION_COLOUR
    )
    assert (
        colour_at(drawn, 500, 300) == EVIDENCE_COLOUR
        and colour_at(drawn, 749, 300) == EVIDENCE_COLOUR
    )
    thick = mask_of(drawn, REGION_COLOUR)[300].sum()
    thin = mask_of(drawn, EVIDENCE_COLOUR)[300].sum()
    assert thin < thick


@pytest.mark.parametrize("writeable", [True, False])
def test_the_input_is_not_modified(writeable):
    rgb = photo(3, (640, 480))
    rgb.setflags(write=writeable)
    before = rgb.copy()
    small = annotate(rgb, REGIONS, evidence_boxes=REGIONS[:1], max_side=320)
    same = annotate(rgb, REGIONS, evidence_boxes=REGIONS[:1])
    assert np.array_equal(rgb, before)
    assert small.size == (320, 240) and same.size == (640, 480)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="uint8"):
        annotate(np.zeros((10, 10), np.uint8), [])
    with pytest.raises(ValueError, match="uint8"):
        annotate(np.zeros((10, 10, 3), np.float32), [])
    with pytest.raises(ValueError, match="max_side"):
        annotate(flat(), [], max_side=4)


def test_the_file_name_is_in_the_title_escaped_and_a_question_not_understood_is_marked(
    investigator,
):
    name = '<b>"holiday".png'
    verdict = investigator.analyze(encode(photo(9, (320, 240))), name=name)
    investigator.ask(verdict.case_id, "what about the hands?")
    _, page = rendered(investigator, verdict.case_id)
    title = page.split("<title>", 1)[1].split("</title>", 1)[0]
    assert "&lt;b&gt;&quot;holiday&quot;.png" in title and "<b>" not in page.split("<body>")[0]
    assert "the question was not understood" in page
