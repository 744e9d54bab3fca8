"""Postgres as the case store: a case analysed in one process is followed up in another."""

import os

import pytest

from sleuth.agent.verdict import Verdict
from tests.agent.conftest import composite_png
from tests.agent.test_cli_cases import follow_up_list_and_show, sleuth
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
    follow_up_list_and_show(verdict, env)
