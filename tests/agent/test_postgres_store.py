"""Postgres as the case store: a case analysed in one process is followed up in another."""

import json
import os

import pytest

from sleuth.agent.verdict import Answer, Case, Verdict
from tests.agent.conftest import composite_png
from tests.agent.test_cli_cases import sleuth
from tests.engines.fixtures import postgres_url  # noqa: F401 (a fixture)

pytestmark = pytest.mark.slow


def test_a_case_in_postgres_is_followed_up_from_a_new_process(tmp_path, postgres_url):  # noqa: F811
    (tmp_path / "c.toml").write_text(f'case_store = "{postgres_url}"\n')
    env = {
        **os.environ,
        "SLEUTH_DATA_DIR": str(tmp_path / "data"),
        "SLEUTH_CONFIG": str(tmp_path / "c.toml"),
    }
    image = tmp_path / "composite.png"
    image.write_bytes(composite_png())
    verdict = Verdict.model_validate_json(sleuth(["analyze", str(image), "--json"], env).stdout)
    assert not (tmp_path / "data" / "cases.sqlite").exists()  # the case went to Postgres
    answer = Answer.model_validate_json(
        sleuth(
            ["ask", verdict.case_id, "what did the noise tool show in box 1?", "--json"], env
        ).stdout
    )
    assert answer.evidence and {e.tool for e in answer.evidence} == {"noise"}
    listed = json.loads(sleuth(["cases", "list", "--json"], env).stdout)
    assert [row["case_id"] for row in listed] == [verdict.case_id] and listed[0]["questions"] == 1
    case = Case.model_validate_json(
        sleuth(["cases", "show", verdict.case_id, "--json"], env).stdout
    )
    assert case.verdict == verdict and case.answers == [answer]
