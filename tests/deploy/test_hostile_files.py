"""Hostile study files against the real deployment (deploy/local.py: nginx, basic auth, one
app process): a study that no worker can load within its memory limit, and one whose files the
limits refuse, sit next to the demo. The server stays up, a new session opens the demo and
says why the first study was skipped, a second session that asks for the hostile study gets
its finding naming the file, and both sessions keep working."""

from __future__ import annotations

import re
import shutil

import pytest

from deploy import local
from tests.bad_inputs.make_corpus import gzip_bomb, wide_csv
from tests.deploy.conftest import open_browser

pytestmark = pytest.mark.deploy

if local.tools_missing():
    pytest.skip(f"deployment tests need {', '.join(local.tools_missing())} "
                "(apt-get install nginx apache2-utils openssl)", allow_module_level=True)

CORPUS = local.ROOT / "tests" / "bad_inputs"
PATIENTS = "subject_id,age,sex\nP1,34,M\nP2,51,F\n"


@pytest.fixture(scope="module")
def hostile_site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    studies = tmp / "studies"
    # a_hostile: a 10^6-column CSV that the server's limits let through but that no load
    # can parse in 700 MB
    bad = studies / "a_hostile"
    bad.mkdir(parents=True)
    (bad / "patients.csv").write_text(PATIENTS)
    wide_csv(bad / "measurements.csv", columns=10**6)
    shutil.copytree(local.ROOT / "sample_data" / "demo", studies / "b_demo")
    # c_limits: every hostile shape the limits refuse, beside good patients
    lim = studies / "c_limits"
    lim.mkdir()
    (lim / "patients.csv").write_text(PATIENTS)
    gzip_bomb(lim / "measurements.csv.gz", unpacked_bytes=10**9)
    shutil.copyfile(CORPUS / "responses_huge_dimension.xlsx", lim / "responses.xlsx")
    shutil.copyfile(CORPUS / "single_cell_huge_obs.h5ad", lim / "single_cell.h5ad")
    (studies / "server.toml").write_text("[limits]\nmax_columns = 2000000\n"
                                         "[worker]\nmemory_mb = 700\nretries = 0\n")
    with local.running_site(tmp, studies, processes=1) as site:
        yield site


def _text(page) -> str:
    return page.locator("body").inner_text()


def _wait_text(page, pattern: str, timeout: float = 90_000) -> None:
    page.get_by_text(re.compile(pattern)).first.wait_for(timeout=timeout)


def test_hostile_studies_leave_the_server_and_other_sessions_working(hostile_site, browser):
    site = hostile_site
    app = next(iter(site.apps.values()))
    first, page1, _ = open_browser(browser, site)
    second, page2, _ = open_browser(browser, site)
    try:
        page1.goto(site.url("/"))
        _wait_text(page1, r"could not be loaded")
        _wait_text(page1, r"showing 'b_demo'")
        page1.get_by_role("heading", name="Overview").first.wait_for(timeout=60_000)

        page2.goto(site.url("/?study=a_hostile"))
        _wait_text(page2, r"measurements\.csv")
        body = _text(page2)
        assert "ran out of memory" in body and "700 MB" in body, body[:2000]

        page2.goto(site.url("/data_quality?study=c_limits"))
        # the report is a data grid: its cells are in the page, drawn on a canvas
        page2.get_by_text(re.compile(r"unpacks to more than 512\.0 MB")).first.wait_for(
            state="attached", timeout=90_000)
        body = page2.content()
        assert "declares 1,048,576 rows x 16,384 columns" in body, body[:3000]
        assert "declares 1,000,000,000 cells in obs" in body, body[:3000]

        # the first session still works, and the process never restarted
        page1.reload()
        page1.get_by_role("heading", name="Overview").first.wait_for(timeout=60_000)
        assert "study=b_demo" in page1.url
        assert app.proc.poll() is None
    finally:
        first.close()
        second.close()
