"""The chatbot demo in a real browser: Debian's Chromium driven by Playwright against `sluice demo`'s two servers.

It types a message and watches the reply grow render by render, checks the structured fields and the webhook
step's enrichment, then reloads the page in the middle of a second answer and checks that the stream resumes where
it was and completes with no repeated or missing text. It leaves a screenshot in docs/chatbot.png for the README.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
from playwright.async_api import expect

from sluice.client import AsyncSluiceClient
from tests.e2e.chatbot_harness import assert_grows, chromium, last_reply, open_page, renders, running_demo, send

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "chatbot.png"


async def test_chat_streams_then_resumes_after_a_reload(tmp_path: Path) -> None:
    errors: list[str] = []
    sockets: list[str] = []
    async with running_demo(tmp_path) as demo, chromium() as browser:
        page = await open_page(browser, demo.chat_url, errors, sockets)

        # 1. A message: the reply grows over several renders, then the structured fields appear.
        await send(page, "I love how fast this feels, thanks for the great streaming")
        await expect(page.locator('[data-testid="sentiment"]')).to_have_count(1)
        channel1, final1 = await last_reply(page)
        grew = await renders(page, channel1)
        assert len(grew) >= 5, grew
        assert_grows(grew, final1)
        assert "I love how fast this feels" in final1
        await expect(page.locator('[data-testid="sentiment"]')).to_contain_text("positive (")
        await expect(page.locator('[data-testid="topics"] .chip')).not_to_have_count(0)
        await expect(page.locator('[data-testid="action-items"] li')).not_to_have_count(0)
        await expect(page.locator('[data-testid="status"]')).to_have_text("completed")
        statuses = await page.evaluate("window.__statuses")
        assert "running" in statuses, statuses

        # The webhook step: the backend verified the signed webhook, added its ids and called back.
        assert demo.webhooks == (os.environ.get("CHATBOT_WEBHOOKS", "1") != "0")
        conversation_id = await page.evaluate("sessionStorage.getItem('chatbot:conversation')")
        if demo.webhooks:
            assert "awaiting callback" in statuses, statuses
            await expect(page.locator('[data-testid="message-id"]')).to_contain_text(f"conversation {conversation_id}")

        # 2. A second message, and a reload in the middle of its answer.
        await send(page, "My parcel arrived broken and support was slow")
        await page.wait_for_function(
            """() => { const r = document.querySelectorAll('[data-testid="reply"]');
                       return r.length === 2 && r[1].textContent.length > 40; }"""
        )
        _, shown_before_reload = await last_reply(page)
        sockets_before = len(sockets)
        await page.reload()

        await expect(page.locator('[data-testid="sentiment"]')).to_have_count(2)
        channel2, final2 = await last_reply(page)
        after_reload = await renders(page, channel2)
        # The reloaded page first showed what it had (restored, not re-streamed from empty), then grew to the end.
        assert after_reload[0].startswith(shown_before_reload), (after_reload[0], shown_before_reload)
        assert len(after_reload[0]) < len(final2), "the reload came too late to test a resume"
        assert len(after_reload) >= 2
        assert_grows(after_reload, final2)
        resumed = [parse_qs(urlparse(url).query) for url in sockets[sockets_before:]]
        assert resumed and int(resumed[0]["after"][0]) > 0, sockets[sockets_before:]

        # No repeated or missing text: exactly the reply the gateway produced.
        async with AsyncSluiceClient(demo.gateway_url, api_key=demo.api_key) as sluice:
            second = (await sluice.get_request(channel2)).data
            assert final2 == second["reply"]
            assert final1 == (await sluice.get_request(channel1)).data["reply"]
        if demo.webhooks:  # the page shows the enriched object
            await expect(page.locator('[data-testid="message-id"]').last).to_contain_text(second["id"])

        # The conversation kept its history, on the page and in the backend.
        await expect(page.locator("li.user")).to_have_count(2)
        assert (await page.locator('[data-testid="reply"]').first.inner_text()) == final1
        async with httpx.AsyncClient() as http:
            history = (await http.get(f"{demo.chat_url}conversations/{conversation_id}")).json()["messages"]
        assert [m["role"] for m in history] == ["user", "assistant", "user", "assistant"]
        assert history[3]["content"] == final2

        assert errors == []
        SCREENSHOT.parent.mkdir(exist_ok=True)
        await page.screenshot(path=str(SCREENSHOT), full_page=True)
