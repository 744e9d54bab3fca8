"""The offline analyst end to end on the shared image set (skipped when it is absent)."""

import random

import pytest

from sleuth.agent.verdict import Verdict
from tests.tools.test_provenance import VENDOR_AI

pytestmark = [pytest.mark.data, pytest.mark.slow]


def test_vendor_signed_ai_images_are_called_ai_citing_their_manifest(
    session, shared_data, manifest
):
    rows = [r for r in manifest if r["generator"] in VENDOR_AI and "C2PA" in r["has_metadata"]]
    assert len(rows) >= 8
    for row in rows[:6]:
        verdict = session.analyze(shared_data / row["file"])
        assert verdict.label == "ai_generated" and verdict.stopped == "confident", row["file"]
        provenance = {
            e.id for e in verdict.evidence if e.kind == "provenance" and e.direction == "ai"
        }
        assert any(f"[{i}]" in verdict.explanation for i in provenance), row["file"]
        assert not [s for s in verdict.steps if s.kind == "tool"], "it looked closer needlessly"


def test_any_shared_image_gets_a_complete_verdict(session, shared_data, manifest):
    rows = random.Random(0).sample(manifest, 8)
    for row in rows:
        verdict = session.analyze(shared_data / row["file"])
        again = Verdict.model_validate_json(verdict.model_dump_json())
        assert again == verdict and verdict.evidence and verdict.steps, row["file"]
        width, height = int(row["width"]), int(row["height"])
        for box in [
            *verdict.regions,
            *verdict.boxes,
            *(b for e in verdict.evidence for b in e.boxes),
        ]:
            assert box.x1 <= max(width, height) and box.y1 <= max(width, height), row["file"]
        unstable = verdict.stability is not None and not verdict.stability.stable
        assert (verdict.label == "uncertain") == (
            verdict.abstain_band[0] <= verdict.p_ai <= verdict.abstain_band[1]
            or verdict.stopped == "budget"
            or unstable
        )
