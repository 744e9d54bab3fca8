"""The case list reads each case's small list entry, not every checkpoint of every case."""

from __future__ import annotations

import json

import pytest

from sleuth.agent.cases import SUMMARY_FILE, UnknownCaseError
from sleuth.api import open_session
from tests.conftest import encode, photo


class CountingSaver:
    """A checkpointer proxy counting the calls that read checkpoints."""

    def __init__(self, inner):
        self.inner, self.reads = inner, 0

    def __getattr__(self, name):
        if name in ("list", "get_tuple"):
            self.reads += 1
        return getattr(self.inner, name)


def test_listing_reads_the_entries_written_after_each_run(session):
    first = session.analyze(encode(photo(1)))
    second = session.analyze(encode(photo(2)))
    session.ask(first.case_id, "what did ELA show?")
    entry = json.loads(session.files.artifact_dir(first.case_id).joinpath(SUMMARY_FILE).read_text())
    assert entry["case_id"] == first.case_id and entry["questions"] == 1
    assert entry["label"] == first.label and entry["p_ai"] == first.p_ai
    counting = CountingSaver(session.checkpointer)
    session.store.checkpointer = counting
    rows = session.cases()
    assert counting.reads == 0  # nothing but the entries was read
    assert [r.case_id for r in rows] == [first.case_id, second.case_id]  # the follow-up is latest
    assert rows[0].backend == "offline:offline-v1"


def test_a_case_without_an_entry_gets_one_from_its_checkpoint(session):
    verdict = session.analyze(encode(photo(3)))
    entry = session.files.artifact_dir(verdict.case_id) / SUMMARY_FILE
    entry.unlink()  # a store written by an older sleuth, or a run killed before its end
    (row,) = session.cases()
    assert (row.case_id, row.label, row.p_ai) == (verdict.case_id, verdict.label, verdict.p_ai)
    assert entry.is_file()


def test_a_damaged_entry_is_rebuilt_and_a_folder_without_a_case_is_skipped(session):
    verdict = session.analyze(encode(photo(4)))
    entry = session.files.artifact_dir(verdict.case_id) / SUMMARY_FILE
    entry.write_text("{not json")
    session.files.cases_dir.joinpath("0123456789abcdef-01234567").mkdir()  # no checkpoint
    session.files.cases_dir.joinpath("not-a-case").mkdir()
    assert [r.case_id for r in session.cases()] == [verdict.case_id]
    assert json.loads(entry.read_text())["case_id"] == verdict.case_id


def test_reading_a_case_needs_no_graph_and_knows_unknown_ids(session):
    verdict = session.analyze(encode(photo(5)))
    assert session.store.case(verdict.case_id).verdict == verdict
    with pytest.raises(UnknownCaseError, match="no case"):
        session.store.case("0123456789abcdef-01234567")
    with pytest.raises(UnknownCaseError, match="not a case id"):
        session.store.case("../etc")


def test_a_pruned_case_leaves_the_list(settings):
    with open_session(settings) as session:
        verdict = session.analyze(encode(photo(6)))
        report = session.prune(older_than_days=0.0, now=4e9)
        assert verdict.case_id in {c.case_id for c in report.cases}
        assert session.cases() == []
