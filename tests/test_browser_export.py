"""Real browser: clicking a figure's PNG download in headless Chromium yields a valid PNG in the
presentation size with its provenance inside."""

from __future__ import annotations

import json

import pytest

from components import export

pytestmark = pytest.mark.browser


def test_png_download_from_a_page(app_server, page, tmp_path, demo_study):
    from PIL import Image

    if export.find_browser() is None:
        pytest.skip(export.export_unavailable_reason())
    page.goto(f"{app_server}/data_quality", wait_until="domcontentloaded")
    row = page.locator(".st-key-dq-availability-downloads")
    button = row.get_by_role("button", name="PNG", exact=True)
    button.wait_for(timeout=45_000)
    with page.expect_download(timeout=90_000) as info:
        button.click()
    download = info.value
    assert download.suggested_filename.endswith(".png")
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    png = path.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(path) as im:
        im.verify()
    assert export.png_size(png) == (2560, 1440)
    meta = json.loads(export.png_text(png)["provenance"])
    assert meta["study_id"] == demo_study.study_id
    assert meta["content_hash"] == demo_study.content_hash
    assert meta["cohort"] == "all patients"
    assert page.locator("[data-testid='stException']").count() == 0
