"""Fixtures for the CircleCI/GitHub tests; test modules load them with
`pytest_plugins = ["circleci_fixtures"]`.

- `storage`, `cci`: the fake storage host and the fake CircleCI (real HTTP on 127.0.0.1);
  at teardown `cci.violations` (OpenAPI validation problems) must be empty.
- `client`: a CircleCIClient on the fake whose retries record their waits in `sleeps`.
- `approving_report` / `holding_report`: small reports built on the fly.
- `fixture_copy`: a private copy of the real BackstopJS fixture report.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from circleci_env import FIXTURE_REPORT, SLUG, Sleeps, fast_policy, make_report
from fake_circleci import FakeCircleCI, FakeStorage

from reviewer.circleci import CircleCIClient


def pytest_configure(config: pytest.Config) -> None:
    # openapi-core warns about a deprecated keyword inside CircleCI's spec, not about our code.
    config.addinivalue_line("filterwarnings", "ignore:Use of allowEmptyValue property is deprecated")


@pytest.fixture
def token() -> str:
    return "cci-" + secrets.token_hex(12)


@pytest.fixture
def storage() -> Iterator[FakeStorage]:
    server = FakeStorage()
    yield server
    server.close()


@pytest.fixture
def cci(token: str, storage: FakeStorage) -> Iterator[FakeCircleCI]:
    server = FakeCircleCI(token, storage)
    server.add_project(SLUG)
    yield server
    server.close()
    assert server.violations == [], "requests/responses that do not match openapi.json"


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(cci: FakeCircleCI, token: str, sleeps: Sleeps) -> Iterator[CircleCIClient]:
    c = CircleCIClient(token, cci.api_url, retry=fast_policy(sleeps))
    yield c
    c.close()


@pytest.fixture
def approving_report(tmp_path: Path) -> Path:
    return make_report(tmp_path / "src-approve")


@pytest.fixture
def holding_report(tmp_path: Path) -> Path:
    return make_report(tmp_path / "src-hold", changed=True)


@pytest.fixture
def fixture_copy(tmp_path: Path) -> Path:
    if not (FIXTURE_REPORT / "html_report" / "config.js").is_file():
        pytest.skip("the BackstopJS fixture report has not been generated (bash fixtures/make_fixture.sh)")
    dest = tmp_path / "fixture" / "backstop_data"
    shutil.copytree(FIXTURE_REPORT, dest)
    return dest
