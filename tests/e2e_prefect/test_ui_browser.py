"""The Prefect UI in Debian's headless Chromium: start a custom benchmark-endpoint run
through the form with a changed parameter, and wait until the run shows Completed."""

from __future__ import annotations

import pytest

from budcluster.bench.testing_server import server_process
from tests.e2e_prefect.conftest import ARTIFACTS, CHROMIUM, CHROMIUM_FLAGS, Platform

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.slow]


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed")
def test_custom_run_from_the_ui_form_completes(platform: Platform) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    deployment = platform.deployment("benchmark-endpoint", "benchmark-endpoint")
    with server_process("--ttft-ms", "1", uvloop=False) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        try:
            page.goto(f"{platform.server.ui_url}/deployments/deployment/{deployment['id']}")
            page.wait_for_timeout(5000)
            page.screenshot(path=str(ARTIFACTS / "ui-deployment.png"), full_page=True)
            expect(page.get_by_text("benchmark-endpoint").first).to_be_visible(timeout=60_000)
            page.get_by_role("button", name="Run", exact=True).click()
            page.get_by_text("Custom run", exact=True).click()
            expect(page.get_by_text("Url (Optional)")).to_be_visible(timeout=30_000)
            # Optional strings start as None: pick "str" for Url, then for Model (the
            # form's first two), and type into the inputs that appear (after Run Name).
            page.get_by_role("button", name="str", exact=True).nth(0).click()
            page.get_by_role("textbox").nth(1).fill(url)
            page.get_by_role("button", name="str", exact=True).nth(1).click()
            page.get_by_role("textbox").nth(2).fill("ui-model")
            # The changed parameter: 12 requests instead of the default 64.
            requests = page.get_by_role("spinbutton").first
            expect(requests).to_have_value("64")
            requests.fill("12")
            page.screenshot(path=str(ARTIFACTS / "ui-custom-run-filled.png"), full_page=True)
            page.get_by_role("button", name="Submit", exact=True).click()
            expect(page.get_by_text("Completed").first).to_be_visible(timeout=180_000)
            shot = ARTIFACTS / "ui-benchmark-run-completed.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"\nscreenshot of the completed run: {shot}")
        finally:
            browser.close()
    # The run the form started has the changed parameter and measured the local server.
    runs = platform.flow_runs(deployment["id"])
    assert len(runs) == 1
    run = platform.wait_for_run(runs[0]["id"], 30)
    assert run["state_type"] == "COMPLETED", platform.tail()
    request = run["parameters"]["request"]
    assert request["url"] == url
    assert request["model"] == "ui-model"
    assert request["profile"]["requests"] == 12
