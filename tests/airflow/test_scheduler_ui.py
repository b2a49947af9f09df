"""The trigger form of github_backup in a real browser: Debian's headless Chromium, driven
by Playwright, against the real-scheduler deployment's api-server (Airflow's simple auth
manager, every user an admin). It fills owners, kinds and runner, triggers, and sees the
run succeed, on the run's page too.

The screenshot of the filled form is written to the test's tmp dir; with
GHVAULT_UPDATE_SCREENSHOTS=1 also to docs/img/trigger-form.png (docs/operations.md shows it).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from urllib.parse import unquote

import pytest
from ghvault.contract import archive_key

from tests.airflow.scheduler_harness import SchedulerStack

pytestmark = [pytest.mark.slow, pytest.mark.scheduler]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "img" / "trigger-form.png"
# left out: the archive stays over 128 KiB, the size below which S3 moves nothing to Glacier
EXCLUDE = ["lfs", "assets"]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise RuntimeError("Debian's chromium is missing: make system-deps installs it")
    return path


@pytest.fixture
def page(scheduler: SchedulerStack):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # --no-sandbox: Chromium's sandbox refuses to start as root (CI runs as root)
        browser = p.chromium.launch(executable_path=chromium(), headless=True,
                                    args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        page.set_default_timeout(60_000)
        yield page
        browser.close()


def test_trigger_form_in_a_browser(scheduler: SchedulerStack, page, tmp_path) -> None:
    scheduler.unpause_and_catch_up()
    owner = scheduler.owners[0]
    before = {r["dag_run_id"] for r in scheduler.runs("manual")}
    page.goto(f"{scheduler.url}/dags/github_backup", wait_until="networkidle")
    page.get_by_role("button", name="Trigger").click()
    form = page.get_by_role("dialog")
    form.locator("#element_owners").fill(owner)
    exclude = form.locator("#element_exclude input[role=combobox]")
    for kind in EXCLUDE:
        exclude.click()
        exclude.type(kind)
        page.keyboard.press("Enter")
    runner = form.locator("#element_runner input[role=combobox]")
    runner.click()
    runner.type("subprocess")
    page.keyboard.press("Enter")
    shot = tmp_path / "trigger-form.png"
    form.screenshot(path=str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("GHVAULT_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)

    form.get_by_role("button", name="Trigger").click()
    page.wait_for_url("**/dags/github_backup/runs/**")
    run_id = unquote(page.url.rsplit("/runs/", 1)[1].split("?")[0])
    assert run_id not in before
    run = scheduler.run(run_id)
    assert run["conf"]["owners"] == [owner] and run["conf"]["exclude"] == EXCLUDE
    assert run["conf"]["runner"] == "local"
    (done,) = scheduler.wait_runs(lambda r: r["dag_run_id"] == run_id, 1, timeout=240)
    page.reload(wait_until="networkidle")
    page.get_by_text("success", exact=False).first.wait_for()
    month = next(m["attributes"]["month"] for m in scheduler.notifications(status="success")
                 if run_id in m["message"])
    manifest = json.loads(scheduler.read(
        archive_key(scheduler.settings["prefix"], owner, month) + ".manifest.json"))
    assert manifest["owner"] == owner and manifest["month"] == month
    # the kinds left out are not in it, the others are
    counts = manifest["counts"]
    assert counts["repos"] > 0 and counts["issues"] > 0
    assert not counts.get("lfs_objects") and not counts.get("release_assets"), counts
