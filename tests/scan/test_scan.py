"""sleuth scan on one machine: rows, duplicates, archives, resuming, the cascade, outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sleuth.agent.session import Session
from sleuth.scan.output import ROWS, ScanOutput
from sleuth.scan.run import ScanOptions, run_scan
from sleuth.scan.sources import SourceError, list_source
from sleuth.tools import load_image
from tests.scan.conftest import jpeg


def rows_of(out: Path) -> dict[str, dict]:
    rows = [json.loads(line) for line in (out / ROWS).read_text().splitlines()]
    return {
        (r["path"].rsplit("/", 1)[-1] + (f"!{r['member']}" if r["member"] else "")): r for r in rows
    }


def test_a_folder_gives_one_row_per_image_with_duplicates_errors_and_archive_members(
    folder, settings, tmp_path
):
    out = tmp_path / "out"
    report = run_scan(ScanOptions(sources=(str(folder),), out=out, jobs=2), settings)
    rows = rows_of(out)
    assert set(rows) == {
        "a.jpg", "b.png", "c.jpg", "a-copy.jpg", "a-smaller.jpg", "broken.jpg",
        "batch.zip!inside/d.jpg",
    }  # fmt: skip
    assert (report.total, report.analysed, report.duplicates, report.errors) == (7, 5, 1, 1)
    first, copy = sorted([rows["a.jpg"], rows["a-copy.jpg"]], key=lambda r: r["route"] != "survey")
    assert copy["route"] == "duplicate" and first["route"] == "survey"
    assert copy["duplicate_of"].endswith(first["path"].rsplit("/", 1)[-1])
    assert (copy["label"], copy["p_ai"], copy["sha256"]) == (
        first["label"], first["p_ai"], first["sha256"]
    )  # fmt: skip
    broken = rows["broken.jpg"]
    assert broken["route"] == "error" and "truncated" in broken["error"].lower()
    member = rows["batch.zip!inside/d.jpg"]
    assert member["route"] == "survey" and member["label"] in {"ai_generated", "real", "uncertain"}
    for row in rows.values():
        if row["route"] == "survey":
            assert 0 <= row["p_ai"] <= 1 and row["evidence"] and len(row["phash"]) == 16


def test_near_duplicates_share_a_group_in_the_table(folder, settings, tmp_path):
    out = tmp_path / "out"
    run_scan(ScanOptions(sources=(str(folder),), out=out, jobs=1), settings)
    table = {
        Path(r["path"]).name + (r["member"] or ""): r
        for r in pq.read_table(out / "rows.parquet").to_pylist()
    }
    assert len(table) == 7
    group = table["a.jpg"]["near_group"]
    assert group is not None
    assert table["a-smaller.jpg"]["near_group"] == group == table["a-copy.jpg"]["near_group"]
    assert table["c.jpg"]["near_group"] != group
    assert "sleuth scan: 7 images" in (out / "summary.html").read_text()


def test_the_survey_verdict_is_the_offline_investigations(folder, settings, tmp_path):
    out = tmp_path / "out"
    run_scan(
        ScanOptions(sources=(str(folder / "sub" / "c.jpg"), str(folder / "b.png")), out=out),
        settings,
    )
    rows = rows_of(out)
    with Session(settings.session_config()) as session:
        for name, path in (("c.jpg", folder / "sub" / "c.jpg"), ("b.png", folder / "b.png")):
            verdict = session.analyze(load_image(path))
            assert (rows[name]["p_ai"], rows[name]["label"]) == (verdict.p_ai, verdict.label)


def test_a_rerun_skips_what_is_done_and_a_cut_line_is_dropped(folder, settings, tmp_path):
    out = tmp_path / "out"
    run_scan(ScanOptions(sources=(str(folder),), out=out), settings)
    lines = (out / ROWS).read_text().splitlines()
    (out / ROWS).write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:40])  # a crash mid-line
    (folder / "e.jpg").write_bytes(jpeg(6))
    again = run_scan(ScanOptions(sources=(str(folder),), out=out), settings)
    assert again.skipped == 6 and again.analysed + again.errors + again.duplicates == 2
    rows = [json.loads(line) for line in (out / ROWS).read_text().splitlines()]
    assert len(rows) == 8 and len({(r["path"], r["member"]) for r in rows}) == 8


def test_escalation_sends_uncertain_images_to_the_backend_and_keeps_their_cases(
    folder, settings, tmp_path
):
    out = tmp_path / "out"
    options = ScanOptions(sources=(str(folder / "sub"),), out=out, escalate=True, keep_cases=True)
    report = run_scan(options, settings)
    rows = [r for r in rows_of(out).values() if r["route"] in ("model", "survey")]
    uncertain_first = [r for r in rows if r["route"] == "model"]
    assert report.escalated == len(uncertain_first) >= 1, rows
    with Session(settings.session_config()) as session:
        stored = {c.case_id for c in session.cases()}
    assert {r["case_id"] for r in uncertain_first} <= stored


def test_a_dead_model_server_keeps_the_survey_verdict_with_a_note(folder, tmp_path):
    from sleuth.settings import Settings

    dead = Settings(
        data_dir=tmp_path / "data",
        backend="openai:some-model",
        base_url="http://127.0.0.1:9/v1",
        fallback=False,
    )
    out = tmp_path / "out"
    run_scan(ScanOptions(sources=(str(folder / "a.jpg"),), out=out, escalate=True), dead)
    (row,) = rows_of(out).values()
    assert row["label"] == "uncertain"  # the survey leaves it uncertain: it is escalated
    assert row["route"] == "survey" and "model backend failed" in row["error"]
    assert row["p_ai"] is not None


def test_sources_lists_manifests_globs_and_refuses_missing_ones(folder, tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("file,label\nin/a.jpg,real\nin/sub/c.jpg,fake\n")
    listed = list(list_source(str(manifest)))
    assert [(Path(r.path).name, r.label) for r in listed] == [("a.jpg", "real"), ("c.jpg", "fake")]
    paths = tmp_path / "list.txt"
    paths.write_text("# two images\nin/a.jpg\n\nin/b.png\n")
    assert [Path(r.path).name for r in list_source(str(paths))] == ["a.jpg", "b.png"]
    assert [Path(r.path).name for r in list_source(str(folder / "*.png"))] == ["b.png"]
    with pytest.raises(SourceError, match="no such file"):
        list(list_source(str(tmp_path / "missing")))
    with pytest.raises(SourceError, match="file"):
        bad = tmp_path / "bad.csv"
        bad.write_text("path,label\nx,y\n")
        list(list_source(str(bad)))


def test_an_output_folder_that_cannot_be_written_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError, match="cannot write the output folder"):
        ScanOutput(blocker / "out")


def test_uris_are_read_through_pyarrows_filesystems(folder, settings, tmp_path):
    out = tmp_path / "out"
    report = run_scan(ScanOptions(sources=((folder / "sub").as_uri(),), out=out), settings)
    rows = [json.loads(line) for line in (out / ROWS).read_text().splitlines()]
    assert report.total == 2 and {r["path"].rsplit("/", 1)[-1] for r in rows} == {
        "c.jpg",
        "a-copy.jpg",
    }
    assert all(r["path"].startswith("file:///") and r["route"] == "survey" for r in rows)
    with pytest.raises(SourceError, match="no such file"):
        list(list_source((tmp_path / "gone").as_uri()))
    with pytest.raises(SourceError, match="cannot open"):
        list(list_source("nosuchscheme://bucket/x"))


def test_the_gallery_shows_thumbnails_only_of_the_bytes_that_were_analysed(
    folder, settings, tmp_path
):
    out = tmp_path / "out"
    run_scan(ScanOptions(sources=(str(folder),), out=out, jobs=1), settings)
    page = (out / "summary.html").read_text()
    analysed = sum(r["route"] == "survey" for r in rows_of(out).values())
    assert page.count('src="data:image/jpeg;base64,') == analysed  # the suspicious gallery
    (folder / "sub" / "c.jpg").write_bytes(jpeg(9))  # replaced after the scan
    ScanOutput(out).finish()
    again = (out / "summary.html").read_text()
    assert again.count('src="data:image/jpeg;base64,') == analysed - 1


def test_a_copy_found_by_a_later_run_takes_the_earlier_runs_row(folder, settings, tmp_path):
    out = tmp_path / "out"
    run_scan(ScanOptions(sources=(str(folder),), out=out), settings)
    first = rows_of(out)["c.jpg"]
    (folder / "c-again.jpg").write_bytes((folder / "sub" / "c.jpg").read_bytes())
    again = run_scan(ScanOptions(sources=(str(folder),), out=out), settings)
    copy = rows_of(out)["c-again.jpg"]
    assert again.duplicates == 1 and again.analysed == 0
    assert copy["route"] == "duplicate" and copy["duplicate_of"].endswith("c.jpg")
    assert (copy["p_ai"], copy["label"], copy["evidence"]) == (
        first["p_ai"], first["label"], first["evidence"]
    )  # fmt: skip
    seen = ScanOutput(out).seen()
    assert ScanOutput(out).row_at(seen.first[first["sha256"]])["path"] == first["path"]


def test_without_pyarrow_the_cli_names_the_extra_to_install(folder, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from sleuth.cli import app
    from sleuth.scan import output

    (tmp_path / "none.toml").write_text("")
    monkeypatch.setenv("SLEUTH_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("SLEUTH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(output, "write_parquet", lambda *args, **kwargs: None)
    result = CliRunner().invoke(app, ["scan", str(folder / "b.png"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "pip install 'sleuth[scan]' (pyarrow)" in result.output


def test_the_summary_says_image_for_one_and_images_for_more(tmp_path):
    from sleuth.scan.rows import error_row
    from sleuth.scan.summary import Tally, write_summary

    tally = Tally()
    headings = []
    for name in ("a.jpg", "b.jpg"):
        tally.add(error_row(name, None, "unreadable: truncated"))
        page = write_summary(tally, tmp_path / "summary.html").read_text()
        headings.append(page.split("<h1>")[1].split("</h1>")[0])
    assert headings == ["sleuth scan: 1 image", "sleuth scan: 2 images"]
