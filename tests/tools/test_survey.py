"""The survey: every survey tool once on the whole image, and candidate regions from their boxes."""

import collections

import pytest

from sleuth.tools import ToolRegistry, load_image
from sleuth.tools.survey import run_survey, survey_tools
from tests.conftest import encode, photo
from tests.tools.test_localisation import PASTED, decoded, paste

BUILTIN_SURVEY = {
    "colour",
    "dimensions",
    "ela",
    "jpeg",
    "noise",
    "provenance",
    "spectrum",
    "texture",
}


@pytest.fixture
def counted(monkeypatch):
    """A fresh registry whose ``run`` records each tool it is asked to run."""
    registry = ToolRegistry.discover()
    calls = []
    real_run = registry.run

    def run(name, image, *args, **kwargs):
        calls.append(name)
        return real_run(name, image, *args, **kwargs)

    monkeypatch.setattr(registry, "run", run)
    return registry, calls


@pytest.fixture(scope="module")
def spliced():
    """A PNG with an area that missed the JPEG compression the rest went through."""
    base = photo(1, (640, 480))
    return load_image(encode(paste(decoded(encode(base, "JPEG", quality=70)), base)))


def test_the_default_survey_is_every_builtin_but_zoom_cheapest_first():
    registry = ToolRegistry.discover()
    names = survey_tools(registry)
    assert BUILTIN_SURVEY <= set(names)
    assert "zoom" not in names
    order = {"cheap": 0, "moderate": 1, "expensive": 2}
    costs = [order[registry.get(name).cost] for name in names]
    assert costs == sorted(costs)


def test_the_survey_runs_every_survey_tool_once_and_returns_their_findings(counted, spliced):
    registry, calls = counted
    survey = run_survey(registry, spliced)
    expected = survey_tools(registry)
    assert collections.Counter(calls) == collections.Counter(expected)
    assert list(survey.results) == expected
    assert set(survey.seconds) == set(expected)
    for name, result in survey.results.items():
        assert result.findings, name
        assert {finding.tool for finding in result.findings} == {name}


def test_candidates_are_in_bounds_best_first_and_come_from_the_findings(spliced, registry):
    survey = run_survey(registry, spliced, top_k=3)
    boxes = {box for r in survey.results.values() for f in r.findings for box in f.boxes}
    assert 0 < len(survey.candidates) <= 3
    scores = [c.score for c in survey.candidates]
    assert scores == sorted(scores, reverse=True)
    for candidate in survey.candidates:
        assert candidate.box in boxes
        candidate.box.check_inside(spliced.width, spliced.height)  # raises when outside
    assert any(c.box.iou(PASTED) >= 0.5 for c in survey.candidates)


def test_a_chosen_list_of_tools_runs_only_those_and_reports_progress(counted, spliced):
    registry, calls = counted
    seen = []
    survey = run_survey(
        registry,
        spliced,
        tools=["dimensions", "colour"],
        progress=lambda name, done, total: seen.append((name, done, total)),
    )
    assert calls == ["dimensions", "colour"]
    assert list(survey.results) == ["dimensions", "colour"]
    assert seen == [("dimensions", 0, 2), ("colour", 1, 2)]
