"""A real headless Chromium: the user's own chat message is shown as text, never as a live link or markup."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_server import ThreadedServer

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing: apt-get install chromium"),
]
HOSTILE = "미국의 AI 반도체는? [여기를 누르세요](javascript:window.__xss=1) <img src=x onerror=window.__xss=2>"


def test_the_users_own_message_is_escaped(report_settings, engine):
    from playwright.sync_api import expect, sync_playwright

    with ThreadedServer(report_settings, engine) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        page = browser.new_page()
        page.set_default_timeout(60_000)
        page.goto(f"{server.url}/")
        page.fill("#aiqa-input textarea", HOSTILE)
        page.keyboard.press("Enter")
        page.wait_for_selector(".aiqa-reply")
        chat = page.locator("#aiqa-chat")
        expect(chat).to_contain_text("javascript:window.__xss=1")  # shown as the text it is
        assert chat.locator("a[href^='javascript']").count() == 0
        assert chat.locator("img[src='x']").count() == 0
        assert page.evaluate("window.__xss") is None
        browser.close()
