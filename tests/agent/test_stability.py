"""Stability as evidence: the survey's verdict on web-style copies of the image."""

import pytest

from sleuth.agent import stability
from sleuth.agent.context import AgentContext
from sleuth.agent.evidence import to_evidence
from sleuth.agent.fusion import FusionWeights, fuse
from sleuth.agent.verdict import label_for
from sleuth.agent.view import CaseView
from sleuth.api import open_session
from sleuth.settings import Settings, SettingsError
from sleuth.tools import ToolRegistry, load_image
from sleuth.tools.survey import run_survey
from sleuth.tools.variants import STABILITY_VARIANTS, stability_variants
from tests.agent.conftest import A1111, png_with_text
from tests.conftest import encode, loaded, photo


def camera_jpeg() -> bytes:
    """A photo-like JPEG: nothing but its pixels to go by."""
    return encode(photo(1, (640, 480)), "JPEG", quality=90)


def declared_png() -> bytes:
    """A PNG whose metadata declares its generator: a confident label from provenance."""
    return png_with_text(photo(2, (320, 240)), {"parameters": "a cat\n" + A1111})


def flipping_fusion(monkeypatch) -> list[float]:
    """Make every copy's fused probability land on the other side of the band.

    The first call of each check fuses the image itself and is left alone.
    """
    calls: list[float] = []

    def double(evidence, **kwargs):
        p = fuse(evidence, **kwargs)
        calls.append(p)
        return p if len(calls) == 1 else (0.95 if p < 0.5 else 0.05)

    monkeypatch.setattr(stability, "fuse", double)
    return calls


def test_the_copies_are_the_same_bytes_every_time():
    rgb = photo(4, (200, 150))
    first, second = stability_variants(rgb, STABILITY_VARIANTS), stability_variants(rgb.copy(), 3)
    assert first == second and len(first) == STABILITY_VARIANTS
    assert len({name for name, _ in first}) == STABILITY_VARIANTS
    sizes = [load_image(data).size for _, data in first]
    assert sizes == [(150, 112), (200, 150), (192, 142)]
    assert all(load_image(data).format == "JPEG" for _, data in first)
    assert stability_variants(rgb, 1) == first[:1] and stability_variants(rgb, 0) == []


@pytest.mark.parametrize(
    ("p_original", "p_copy", "stable"),
    [
        (0.90, 0.80, True),  # stays above the band
        (0.50, 0.60, True),  # stays inside it
        (0.90, 0.50, False),  # into the band
        (0.50, 0.20, False),  # out of it
        (0.10, 0.90, False),  # across it
    ],
)
def test_unstable_means_the_label_moves(monkeypatch, p_original, p_copy, stable):
    values = iter([p_original, p_copy])
    monkeypatch.setattr(stability, "fuse", lambda evidence, **kwargs: next(values))
    image = loaded(photo(5, (96, 64)))
    check = stability.check(ToolRegistry(), image, [], count=1, band=(0.35, 0.65))
    assert check.stable is stable and check.label == label_for(p_original, (0.35, 0.65))
    assert [v.p_ai for v in check.variants] == [p_copy]


@pytest.mark.parametrize("image", [camera_jpeg, declared_png])
def test_a_stable_verdict_is_unchanged(settings, image):
    with open_session(settings) as session:
        checked = session.analyze(image())
    with open_session(settings.model_copy(update={"stability_variants": 0})) as session:
        plain = session.analyze(image())
    assert checked.stability is not None and checked.stability.stable
    assert len(checked.stability.variants) == AgentContext.stability_variants
    assert (checked.label, checked.p_ai, checked.explanation) == (
        plain.label,
        plain.p_ai,
        plain.explanation,
    )
    assert checked.stability.p_original == plain.p_signals
    assert [s.kind for s in checked.steps].count("stability") == 1
    assert checked.timings["stability"] == checked.stability.seconds


def test_a_label_that_moves_on_a_copy_gives_uncertain_and_says_why(settings, monkeypatch):
    flipping_fusion(monkeypatch)
    with open_session(settings) as session:
        verdict = session.analyze(declared_png())
    fused = label_for(verdict.p_ai, verdict.abstain_band)
    assert fused == "ai_generated", "the declared generator should settle it"
    assert verdict.label == "uncertain" and verdict.p_ai == verdict.p_signals  # p_ai as fused
    check = verdict.stability
    assert check is not None and not check.stable and check.label == fused
    assert all(v.label != fused for v in check.variants)
    note = verdict.explanation.split("\n\n")[-1]
    assert note.startswith("The verdict does not hold on web-style copies")
    assert f"{check.p_original:.2f} on the image itself" in note
    for copy in check.variants:
        assert f"{copy.p_ai:.2f} on a copy {copy.name}" in note
    assert note.endswith("So it is uncertain.")


def test_zero_variants_switch_the_check_off(settings, monkeypatch):
    calls = flipping_fusion(monkeypatch)
    with open_session(settings.model_copy(update={"stability_variants": 0})) as session:
        verdict = session.analyze(declared_png())
    assert verdict.stability is None and not calls
    assert "stability" not in [s.kind for s in verdict.steps]
    assert verdict.label == label_for(verdict.p_ai, verdict.abstain_band) == "ai_generated"
    assert "web-style copies" not in verdict.explanation


def test_the_setting_has_one_default_and_a_range(monkeypatch, tmp_path):
    monkeypatch.setenv("SLEUTH_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")
    assert Settings.load().stability_variants == AgentContext.stability_variants
    monkeypatch.setenv("SLEUTH_STABILITY_VARIANTS", "0")
    assert Settings.load().stability_variants == 0
    with pytest.raises(SettingsError, match="stability_variants"):
        Settings.load(stability_variants=STABILITY_VARIANTS + 1)


def test_copies_run_only_the_tools_the_fusion_weighs():
    scored = FusionWeights.load().scored_tools(["acme"])
    assert scored == {"colour", "dimensions", "provenance", "acme"}  # lr-v6 and a plugin
    assert FusionWeights.load("fusion-hand-v1.json").scored_tools() is None


def test_skipping_unweighed_tools_leaves_every_copy_probability_unchanged(monkeypatch):
    registry = ToolRegistry.discover()
    image = loaded(photo(6, (256, 192)))
    survey = run_survey(registry, image, top_k=0)
    evidence = [
        item
        for result in survey.results.values()
        for item in to_evidence(result, CaseView({}), offset=0, region=None, step=0)
    ]
    evidence = [e.model_copy(update={"id": f"e{i}"}) for i, e in enumerate(evidence)]
    ran: list[list[str]] = []

    def spy(registry, image, *, tools, top_k):
        ran.append(list(tools))
        return run_survey(registry, image, tools=tools, top_k=top_k)

    monkeypatch.setattr(stability, "run_survey", spy)
    fast = stability.check(registry, image, evidence, count=3, band=(0.35, 0.65))
    assert ran[0] == ["colour"]  # lr-v6 weighs colour statistics and the file's size
    monkeypatch.setattr(FusionWeights, "scored_tools", lambda self, calibrated=(): None)
    every = stability.check(registry, image, evidence, count=3, band=(0.35, 0.65))
    assert {"jpeg", "noise", "ela"} <= set(ran[-1])
    assert [v.p_ai for v in fast.variants] == [v.p_ai for v in every.variants]
