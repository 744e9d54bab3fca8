"""Storage limits on a real SQLite case store: retention by age and size, private files,
shared images, and a damaged database file."""

from __future__ import annotations

import os
import sqlite3
import stat
import time

import pytest

from sleuth.agent import retention
from sleuth.agent.cases import CaseStoreError
from sleuth.api import open_session
from sleuth.settings import Settings
from sleuth.tools import SleuthError
from tests.conftest import encode, photo

DAY = 86400.0
LATER = 2 * 3600.0  # past the window in which cases and files count as in use


@pytest.fixture(autouse=True)
def open_umask():
    """A usual umask, so that private modes are sleuth's doing, not the environment's."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def small_png(seed: int) -> bytes:
    return encode(photo(seed, (96, 64)))


def rows_of(database, case_id: str) -> int:
    with sqlite3.connect(database) as conn:
        return sum(
            conn.execute(f"SELECT count(*) FROM {t} WHERE thread_id = ?", (case_id,)).fetchone()[0]
            for t in ("checkpoints", "writes")
        )


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_prune_by_age_keeps_a_shared_image_while_a_case_refers_to_it(session, settings):
    old = session.analyze(small_png(1)).case_id
    between = time.time()
    time.sleep(1.1)
    shared = session.analyze(small_png(1)).case_id
    other = session.analyze(small_png(2)).case_id
    files, database = session.files, settings.case_store_target
    image = files.image_path(session.case(old).image_id)
    assert rows_of(database, old) > 0 and files.artifact_dir(old).is_dir()

    report = session.prune(older_than_days=1, now=between + DAY)
    assert [c.case_id for c in report.cases] == [old] and report.images == []
    assert rows_of(database, old) == 0 and not files.artifact_dir(old).exists()
    assert image.is_file() and session.image(shared).sha256 == session.case(shared).image_id
    assert {r.case_id for r in session.cases()} == {shared, other}

    report = session.prune(older_than_days=0.5, now=time.time() + DAY)
    assert {c.case_id for c in report.cases} == {shared, other} and len(report.images) == 2
    assert not image.exists() and session.cases() == []
    assert report.size_after < report.size_before


def test_prune_by_size_removes_the_least_recently_used_first(session):
    cases = [session.analyze(small_png(seed)).case_id for seed in (3, 4, 5)]
    before = retention.store_bytes(session.files, session.checkpointer)
    limit_mb = (before - 1) / retention.MB
    spared = session.prune(max_mb=limit_mb)
    assert spared.cases == [] and spared.in_use == 3  # every case was used in the last hour
    plan = session.prune(max_mb=limit_mb, dry_run=True, now=time.time() + LATER)
    assert [c.case_id for c in plan.cases] == cases[:1]
    assert [r.case_id for r in session.cases()] == cases[::-1]  # the dry run removed nothing
    done = session.prune(max_mb=limit_mb, now=time.time() + LATER)
    assert [c.case_id for c in done.cases] == cases[:1] and len(done.images) == 1
    assert done.size_after < before and [r.case_id for r in session.cases()] == cases[:0:-1]


def test_a_full_store_makes_room_or_refuses_with_the_setting_named(settings, monkeypatch):
    with open_session(settings) as session:
        first = session.analyze(small_png(6)).case_id
        size = retention.store_bytes(session.files, session.checkpointer)
    incoming = len(small_png(7))
    quota = settings.model_copy(update={"max_store_mb": (size + incoming / 2) / retention.MB})
    with open_session(quota) as session:
        with pytest.raises(CaseStoreError, match="max_store_mb .* cases used in the last"):
            session.analyze(small_png(7))  # the only case to remove is in use
        monkeypatch.setattr(retention, "ACTIVE_WINDOW", 0.0)
        second = session.analyze(small_png(7)).case_id
        assert [r.case_id for r in session.cases()] == [second]
        assert not session.files.artifact_dir(first).exists()
    tiny = settings.model_copy(update={"max_store_mb": 0.001})
    with open_session(tiny) as session, pytest.raises(CaseStoreError, match="larger than"):
        session.analyze(small_png(8))


def test_folders_and_files_are_private(session, settings, tmp_path):
    verdict = session.analyze(small_png(9))
    data = settings.data_dir
    folders = [data, *(p for p in data.rglob("*") if p.is_dir())]
    files = [p for p in data.rglob("*") if p.is_file() and p.name != retention.AGE_MARK]
    assert {mode(p) for p in folders} == {0o700}
    assert {mode(p) for p in files} == {0o600}
    names = {p.name for p in files}
    assert {"cases.sqlite", f"{session.case(verdict.case_id).image_id}.img"} <= names
    assert any(p.suffix == ".png" for p in files)  # artifacts are covered too


def test_an_open_store_of_an_older_version_is_tightened(settings):
    data = settings.data_dir
    (data / "images").mkdir(parents=True)
    (data / "cases").mkdir()
    (data / "cases.sqlite").touch()
    for path in (data / "images", data / "cases"):
        path.chmod(0o755)
    (data / "cases.sqlite").chmod(0o644)
    with open_session(settings):
        pass
    assert mode(data / "images") == mode(data / "cases") == 0o700
    assert mode(data / "cases.sqlite") == 0o600


def test_leftovers_of_killed_runs_go_once_they_are_old(session):
    kept = session.analyze(small_png(10)).case_id
    files = session.files
    stale_image = files.image_path("ab" * 32)
    stale_case = files.cases_dir / "abababababababab-01234567"
    fresh_case = files.cases_dir / "cdcdcdcdcdcdcdcd-01234567"
    for folder in (stale_image.parent, stale_case, fresh_case):
        folder.mkdir(parents=True)
    stale_image.write_bytes(b"x" * 100)
    (stale_case / "ela-heatmap.png").write_bytes(b"x" * 100)
    hours_ago = time.time() - LATER
    for path in (stale_image, stale_case):
        os.utime(path, (hours_ago, hours_ago))
    report = session.prune(older_than_days=30)
    assert sorted(report.leftovers) == sorted([stale_image, stale_case]) and report.cases == []
    assert not stale_image.exists() and not stale_case.exists() and fresh_case.is_dir()
    assert [r.case_id for r in session.cases()] == [kept]


def test_prune_needs_a_limit_and_serve_sets_them(settings, monkeypatch):
    with open_session(settings) as session, pytest.raises(SleuthError, match="nothing to prune"):
        session.prune()
    assert settings.for_serve().max_store_mb == 2048 and settings.for_serve().case_ttl_days == 30
    assert settings.for_serve().max_image_pixels == 24_000_000  # about 1 GB per analysis
    monkeypatch.setenv("SLEUTH_MAX_STORE_MB", "0")
    chosen = Settings.load(case_ttl_days=7).for_serve()
    assert chosen.max_store_mb == 0 and chosen.case_ttl_days == 7


@pytest.mark.parametrize("kept", [None, 0.3, 0.99])
def test_a_damaged_store_is_one_error_naming_the_file(settings, kept):
    """Random bytes, or a real store cut short (at 99% SQLite's own checks pass)."""
    database = settings.data_dir / "cases.sqlite"
    if kept:
        with open_session(settings) as session:
            session.analyze(small_png(11))
        whole = database.read_bytes()
        database.write_bytes(whole[: int(len(whole) * kept)])
    else:
        settings.data_dir.mkdir()
        database.write_bytes(os.urandom(40_000))
    with pytest.raises(CaseStoreError) as caught:
        with open_session(settings) as session:
            session.cases()
            session.analyze(small_png(12))
    message = str(caught.value)
    assert str(database) in message and "not a readable SQLite database" in message
    assert "move it aside or delete it" in message and "\n" not in message
