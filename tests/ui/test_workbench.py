"""The workbench over real HTTP: analyses, progress, pages, pictures, questions, limits."""

from __future__ import annotations

import html
import re

import httpx
import pytest

from tests.ui.conftest import Running
from tests.ui.images import MAKE, MODEL, camera_jpeg

TRICKY_NAME = '<img src=x onerror="alert(1)">.jpg'


@pytest.fixture(scope="module")
def client() -> httpx.Client:
    with httpx.Client(timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def analysed(workbench: Running, client: httpx.Client) -> dict:
    """One uploaded image, analysed to the end."""
    files = {"image": (TRICKY_NAME, camera_jpeg(), "image/jpeg")}
    started = client.post(f"{workbench.url}/api/analyses", files=files)
    assert started.status_code == 202, started.text
    job = workbench.wait(started.json(), client)
    assert job["status"] == "done", job
    return job


def test_an_upload_is_analysed_with_progress_and_stored_as_a_case(analysed, workbench, client):
    assert any("survey" in line for line in analysed["steps"])
    assert re.fullmatch(r"[0-9a-f]{16}-[0-9a-f]{8}", analysed["case_id"])
    listing = client.get(workbench.url + "/").text
    assert analysed["case_id"] in listing
    assert html.escape(TRICKY_NAME, quote=False) in listing or "&lt;img src=x" in listing
    assert TRICKY_NAME not in listing


def test_the_case_page_shows_the_verdict_metadata_and_escapes_the_name(analysed, workbench, client):
    page = client.get(f"{workbench.url}/cases/{analysed['case_id']}")
    assert page.status_code == 200
    text = page.text
    assert TRICKY_NAME not in text and "&lt;img src=x onerror=" in text
    assert 'id="verdict-label"' in text and 'id="p-ai"' in text
    assert html.escape(MAKE) in text and MAKE not in text  # the markup in EXIF stays text
    assert html.escape(MODEL) in text
    assert "48.8" in text  # GPS latitude 48 deg 51' 29"
    assert "content-security-policy" in page.headers
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_pictures_are_served_and_unknown_names_are_refused(analysed, workbench, client):
    base = f"{workbench.url}/cases/{analysed['case_id']}"
    assert client.get(base + "/image").headers["content-type"] == "image/jpeg"
    assert client.get(base + "/thumbnail").status_code == 200
    page = client.get(base).text
    names = set(re.findall(r'data-layer="([a-z0-9_.-]+\.png)"', page))
    assert names, "no overlay layer on the page"
    overlay = client.get(f"{base}/overlays/{sorted(names)[0]}")
    assert overlay.status_code == 200 and overlay.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get(f"{base}/artifacts/nothing-here.png").status_code == 404
    assert client.get(f"{base}/artifacts/..%2Fcase.json").status_code in (404, 400)
    assert client.get(f"{workbench.url}/cases/0123456789abcdef-00000000").status_code == 404
    assert client.get(f"{workbench.url}/cases/not-a-case").status_code == 404


def test_a_question_is_answered_in_the_thread_with_its_evidence(analysed, workbench, client):
    url = f"{workbench.url}/api/cases/{analysed['case_id']}/questions"
    job = workbench.wait(client.post(url, json={"question": "why?"}).json(), client)
    assert job["status"] == "done", job
    page = client.get(f"{workbench.url}/cases/{analysed['case_id']}").text
    assert "Q1: why?" in page
    thread = page[page.index('id="thread"') :]
    assert re.search(r'class="cite" href="#ev-E\d+"', thread)
    empty = client.post(url, json={"question": "  "})
    assert empty.status_code == 400 and "empty" in empty.json()["error"]


def test_bad_uploads_get_a_clear_error(workbench, client):
    url = f"{workbench.url}/api/analyses"
    nothing = client.post(url, files={"other": ("a.txt", b"x", "text/plain")})
    assert nothing.status_code == 400 and "choose an image" in nothing.json()["error"]
    big = client.post(url, files={"image": ("big.jpg", b"\xff" * (3 * 1024 * 1024), "image/jpeg")})
    assert big.status_code == 413 and "2 MB" in big.json()["error"]
    broken = client.post(url, files={"image": ("broken.jpg", camera_jpeg()[:300], "image/jpeg")})
    job = workbench.wait(broken.json(), client)
    assert job["status"] == "failed" and "truncated" in job["error"].lower(), job


def test_paths_are_read_only_under_the_allowed_folder(workbench, client, tmp_path):
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(camera_jpeg(1))
    refused = client.post(f"{workbench.url}/api/analyses", data={"path": str(outside)})
    assert refused.status_code == 400 and "allowed" in refused.json()["error"]
    inside = workbench.allowed / "inside.jpg"
    inside.write_bytes(camera_jpeg(2))
    started = client.post(f"{workbench.url}/api/analyses", data={"path": str(inside)})
    assert started.status_code == 202, started.text
    job = workbench.wait(started.json(), client)
    assert job["status"] == "done"
    assert "inside.jpg" in client.get(f"{workbench.url}/cases/{job['case_id']}").text


def test_the_report_exports_as_a_download(analysed, workbench, client):
    report = client.get(f"{workbench.url}/cases/{analysed['case_id']}/report")
    assert report.status_code == 200
    assert "attachment" in report.headers["content-disposition"]
    assert "<html" in report.text.lower() and TRICKY_NAME not in report.text
