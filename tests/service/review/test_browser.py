"""The review page in a real headless Chromium (Debian's chromium and chromium-driver, through
Selenium) against a real server, with JavaScript switched off: the moves are plain forms."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest

from embedloop.core.access.keys import Scope
from tests.conftest import make_state
from tests.servers import start_server

pytestmark = pytest.mark.integration
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
# EMBEDLOOP_REVIEW_SCREENSHOT=docs/review.png keeps the candidate page's screenshot (the README's).
SCREENSHOT = os.environ.get("EMBEDLOOP_REVIEW_SCREENSHOT")


@pytest.fixture
def chromium():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("needs Debian's chromium and chromium-driver (scripts/test.sh installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,2400"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture
def served(review_home, tmp_path):
    with make_state(review_home) as state:
        _, secret = state.keys.create("ops", frozenset({Scope.ADMIN}))
    server = start_server(review_home, tmp_path / "server.log")
    yield server, secret
    server.stop()


def shown(driver, element_id: str, timeout: float = 30):
    """The element once the page that has it is loaded: a click that submits a form returns before
    the next page is there."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(expected_conditions.presence_of_element_located((By.ID, element_id)))


def sign_in(driver, url: str, secret: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{url}/admin/review")
    assert "/admin/review/login" in driver.current_url
    driver.find_element(By.ID, "key").send_keys(secret)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()


def test_an_approver_signs_in_reads_the_candidate_and_approves_it(chromium, served, tmp_path):
    from selenium.webdriver.common.by import By

    server, secret = served
    driver = chromium
    sign_in(driver, server.url, "el_wrong_secret")
    assert shown(driver, "login-error").text.strip() == "unknown or revoked key"
    assert "v2" not in driver.page_source
    driver.get(f"{server.url}/admin/review/versions/v2")
    assert "/admin/review/login" in driver.current_url and "v2" not in driver.find_element(By.TAG_NAME, "main").text

    sign_in(driver, server.url, secret)
    shown(driver, "versions")
    assert driver.find_element(By.CSS_SELECTOR, "header .who").text == "signed in as ops"
    driver.find_element(By.LINK_TEXT, "v2").click()
    assert shown(driver, "state").text == "candidate"
    assert driver.current_url.endswith("/admin/review/versions/v2")
    groups = driver.find_elements(By.CSS_SELECTOR, "#groups tr")
    names = [row.find_elements(By.TAG_NAME, "td")[0].text for row in groups[1:]]
    with make_state(server.home) as state:
        recorded = state.registry.get("v2").metrics["gates"]["candidate_probe_groups"]
    assert names == sorted(recorded) and len(names) >= 2
    chart = driver.find_element(By.ID, "groups-chart")
    assert chart.size["width"] > 300  # drawn (a broken image would be an icon and its alt text)
    page = tmp_path / "review.png"
    driver.save_screenshot(str(page))
    assert page.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if SCREENSHOT:
        shutil.copy2(page, Path(SCREENSHOT))

    approve = driver.find_element(By.ID, "approve-form")
    approve.find_element(By.TAG_NAME, "button").click()  # no reason: the browser refuses to send the form
    assert driver.current_url.endswith("/admin/review/versions/v2")
    assert driver.find_element(By.ID, "state").text == "candidate"
    approve = driver.find_element(By.ID, "approve-form")
    approve.find_element(By.NAME, "reason").send_keys("every group gained; answers read well")
    approve.find_element(By.NAME, "actor").send_keys("ana")
    approve.find_element(By.TAG_NAME, "button").click()

    assert shown(driver, "notice").text == "Approved: v2 is in production."
    assert driver.find_element(By.ID, "state").text == "approved"
    first_entry = driver.find_elements(By.CSS_SELECTOR, "#audit tr")[1].text
    assert "approve" in first_entry and "ana (key:ops)" in first_entry
    assert "every group gained; answers read well" in first_entry

    listed = httpx.get(f"{server.url}/admin/models", headers={"Authorization": f"Bearer {secret}"}).json()["data"]
    assert next(v for v in listed if v["version"] == "v2")["aliases"] == ["production"]
