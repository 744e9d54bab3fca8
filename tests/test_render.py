"""The verdict on the console: each finding's effect on p_ai, largest first."""

from __future__ import annotations

import re

from rich.text import Text

from sleuth.agent.verdict import Evidence, Verdict
from sleuth.agent.weighing import NOT_COUNTED, TOWARDS_WORDS
from sleuth.present.console import evidence_lines, verdict_lines
from sleuth.tools import Box
from tests.agent.test_weighing import mixed_verdict


def plain(lines: list[str]) -> list[str]:
    return [Text.from_markup(line).plain for line in lines]


def test_evidence_lines_follow_the_contributions_largest_first():
    verdict = mixed_verdict()
    lines = [x for x in plain(evidence_lines(verdict)) if re.match(r"\s+E\d", x)]
    assert [x.split()[0] for x in lines] == ["E2", "E4", "E5", "E3", "E1"]
    by_id = {x.split()[0]: x for x in lines}
    assert NOT_COUNTED in by_id["E1"] and "towards" not in by_id["E1"]  # spectrum "ai", 1.0
    assert "tool's own score 1.00" in by_id["E1"]
    assert by_id["E2"].startswith("  E2  colour: towards AI (") and "log-odds +1.80" in by_id["E2"]
    assert "towards" not in by_id["E3"]  # the noise reads "ai", its term is negligible
    assert TOWARDS_WORDS["real"] in by_id["E4"] and TOWARDS_WORDS["real"] in by_id["E5"]
    assert plain(evidence_lines(verdict))[1] in plain(verdict_lines(verdict))


def test_an_older_verdict_says_its_effects_were_not_recorded():
    stored = mixed_verdict().model_dump(mode="json")
    del stored["contributions"]
    older = Verdict.model_validate(stored | {"versions": {"fusion": "lr-v0"}})
    lines = [x for x in plain(evidence_lines(older)) if re.match(r"\s+E\d", x)]
    assert [x.split()[0] for x in lines] == ["E1", "E2", "E3", "E4", "E5"]  # as found
    assert all(TOWARDS_WORDS["unknown"] in x and "towards" not in x for x in lines)


def test_regional_re_runs_that_do_not_count_share_one_line():
    verdict = mixed_verdict()
    box = Box(x0=0, y0=0, x1=64, y1=64)
    extra = [
        Evidence(id=f"E{i}", tool="ela", region=box, summary="Even.", score=0.9, direction="ai")
        for i in (6, 7, 8)
    ]
    lines = plain(evidence_lines(verdict.model_copy(update={"evidence": verdict.evidence + extra})))
    (shared,) = [x for x in lines if "regional re-run" in x]
    assert shared.startswith("  3 regional re-run(s), E6 to E8:") and "towards" not in shared
    assert not [x for x in lines if re.match(r"\s+E[678]\s", x)]
