"""The exported report: the case view in one self-contained file, small, escaped, offline."""

from __future__ import annotations

import base64
import hashlib
import html
import re

import numpy as np
import pytest
from PIL import Image

from sleuth.agent.session import Session
from sleuth.agent.weighing import ranked, recorded
from sleuth.settings import Settings
from sleuth.ui.casepage import REPORT_BUDGET, export_report
from sleuth.ui.workbench import templates
from tests.ui.images import MAKE, camera_jpeg

NAME = "<script>alert(1)</script> & co.jpg"


def big_photo() -> bytes:
    """A 12 MP JPEG (4000x3000) with camera EXIF, made from a textured synthetic photo."""
    import io

    small = Image.open(io.BytesIO(camera_jpeg(3, (1000, 750))))
    exif = small.getexif()
    tile = np.asarray(small.convert("RGB"))
    rng = np.random.default_rng(0)
    big = np.kron(tile, np.ones((4, 4, 1), dtype=np.uint8)).astype(np.int16)
    big += rng.normal(0, 4, big.shape).astype(np.int16)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(big, 0, 255).astype(np.uint8)).save(
        buffer, format="JPEG", quality=92, exif=exif
    )
    return buffer.getvalue()


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[str, Session, str]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("export"))
    with Session(settings.session_config()) as session:
        verdict = session.analyze(big_photo(), name=NAME)
        session.ask(verdict.case_id, "zoom on box 1")
        page = export_report(templates(), session, verdict.case_id)
        yield page, session, verdict.case_id


def test_a_12_mp_photo_makes_a_report_under_1_mb(exported):
    page, _, _ = exported
    assert len(page.encode()) < REPORT_BUDGET == 1_000_000


def test_the_report_fetches_nothing_and_runs_only_its_own_script(exported):
    page, _, _ = exported
    sources = re.findall(r'\b(?:src|href)="([^"#]*)"', page)
    assert all(s.startswith("data:") for s in sources if s), [s[:40] for s in sources]
    found = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    csp = html.unescape(found.group(1))
    assert "default-src 'none'" in csp and "img-src data:" in csp
    scripts = re.findall(r"<script>(.*?)</script>", page, flags=re.S)
    styles = re.findall(r"<style>(.*?)</style>", page, flags=re.S)
    assert len(scripts) == 1 and len(styles) == 1
    for text in (*scripts, *styles):
        digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp
    assert 'id="ask"' not in page  # no follow-up box in a file


def test_the_name_and_metadata_are_escaped_and_the_evidence_ordered(exported):
    page, session, case_id = exported
    assert NAME not in page
    assert f"<title>{html.escape(NAME)} · sleuth</title>" in page
    assert html.escape(MAKE) in page
    verdict = session.case(case_id).verdict
    order = [e.id for e in ranked(verdict.evidence, recorded(verdict))]
    shown = re.findall(r'<article class="evidence[^"]*" id="ev-(E\d+)"', page)
    assert shown[: len(order)] == order
    assert "Q1: zoom on box 1" in page
