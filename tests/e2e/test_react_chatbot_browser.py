"""The React chatbot (examples/react-chatbot, built with Vite) in Chromium: `useSluice` streams the reply, shows
the structured fields, and resumes after a reload mid-answer. Needs `npm ci && npm run build` in that folder first."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.e2e.chatbot_harness import assert_grows, chromium, last_reply, open_page, renders, running_demo, send

DIST = Path(__file__).resolve().parents[2] / "examples" / "react-chatbot" / "dist"

pytestmark = pytest.mark.skipif(
    not (DIST / "index.html").is_file(), reason="build it first: cd examples/react-chatbot && npm ci && npm run build"
)


async def test_use_sluice_streams_and_resumes_after_a_reload(tmp_path: Path) -> None:
    errors: list[str] = []
    sockets: list[str] = []
    async with running_demo(tmp_path, page_dir=DIST) as demo, chromium() as browser:
        page = await open_page(browser, demo.chat_url, errors, sockets)
        await send(page, "Thanks, the new dashboard is great")
        await expect(page.locator('[data-testid="sentiment"]')).to_have_count(1)
        channel1, final1 = await last_reply(page)
        grew = await renders(page, channel1)
        assert len(grew) >= 5, grew
        assert_grows(grew, final1)
        await expect(page.locator('[data-testid="topics"] .chip')).not_to_have_count(0)
        await expect(page.locator('[data-testid="action-items"] li')).not_to_have_count(0)
        if demo.webhooks:
            await expect(page.locator('[data-testid="message-id"]')).to_contain_text("conversation")

        await send(page, "The export button is broken again")
        await page.wait_for_function(
            """() => { const r = document.querySelectorAll('[data-testid="reply"]');
                       return r.length === 2 && r[1].textContent.length > 40; }"""
        )
        _, shown_before_reload = await last_reply(page)
        await page.reload()
        await expect(page.locator('[data-testid="sentiment"]')).to_have_count(2)
        channel2, final2 = await last_reply(page)
        after_reload = await renders(page, channel2)
        assert after_reload[0].startswith(shown_before_reload), (after_reload[0], shown_before_reload)
        assert len(after_reload[0]) < len(final2), "the reload came too late to test a resume"
        assert_grows(after_reload, final2)
        assert (await page.locator('[data-testid="reply"]').first.inner_text()) == final1
        assert errors == []
