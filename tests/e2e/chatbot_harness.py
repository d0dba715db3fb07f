"""What the chatbot browser tests share: `sluice demo` in the test's event loop, Debian's Chromium, and a recorder
that keeps every text each reply bubble showed, so a test sees what the user saw render by render."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.async_api import Browser, Page, async_playwright, expect

from sluice.cli.demo import run_demo
from tests.conftest import free_port, paced_config

CHROMIUM = "/usr/bin/chromium"  # Debian's package (apt-get install chromium); Playwright never downloads one
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 20_000
expect.set_options(timeout=TIMEOUT_MS)

# Installed before the page's own scripts on every load.
RECORDER = """
window.__renders = [];
window.__statuses = [];
new MutationObserver(() => {
  for (const node of document.querySelectorAll('[data-testid="reply"]')) {
    const channel = node.closest('li')?.dataset.channel ?? 'unknown';
    const last = window.__renders.findLast((entry) => entry[0] === channel);
    if (!last || last[1] !== node.textContent) window.__renders.push([channel, node.textContent]);
  }
  const status = document.querySelector('[data-testid="status"]')?.textContent;
  if (status && window.__statuses.at(-1) !== status) window.__statuses.push(status);
}).observe(document, { subtree: true, childList: true, characterData: true });
"""


@dataclass
class Demo:
    chat_url: str
    gateway_url: str
    lines: list[str] = field(default_factory=list)

    @property
    def api_key(self) -> str:
        return next(line.split()[-1] for line in self.lines if line.startswith("API key"))

    @property
    def webhooks(self) -> bool:
        return any(line.startswith("Webhook step") and " on:" in line for line in self.lines)


@asynccontextmanager
async def running_demo(tmp_path: Path, *, pace_ms: float = 40, page_dir: Path | None = None) -> AsyncIterator[Demo]:
    """`sluice demo` with the simulated provider paced at `pace_ms` a token (time to reload mid-answer)."""
    gateway_port, app_port = free_port(), free_port()
    demo = Demo(chat_url=f"http://127.0.0.1:{app_port}/", gateway_url=f"http://127.0.0.1:{gateway_port}")
    ready, stop = asyncio.Event(), asyncio.Event()

    def announce(line: str) -> None:
        demo.lines.append(line)
        if "Open the chat" in line:
            ready.set()

    task = asyncio.create_task(
        run_demo(
            host="127.0.0.1",
            port=gateway_port,
            app_port=app_port,
            data_dir=tmp_path / "data",
            config=paced_config(tmp_path, pace_ms),
            announce=announce,
            stop=stop,
            page_dir=page_dir,
        )
    )
    waiter = asyncio.ensure_future(ready.wait())
    async with asyncio.timeout(20):
        done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        waiter.cancel()
        task.result()
    try:
        yield demo
    finally:
        stop.set()
        async with asyncio.timeout(15):
            await task


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


async def open_page(browser: Browser, url: str, errors: list[str], sockets: list[str]) -> Page:
    """A page with the recorder installed; page errors, console errors and WebSocket URLs are collected."""
    page = await browser.new_page(viewport={"width": 900, "height": 1000})
    page.set_default_timeout(TIMEOUT_MS)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("websocket", lambda ws: sockets.append(ws.url))
    await page.add_init_script(RECORDER)
    await page.goto(url)
    return page


async def send(page: Page, text: str) -> None:
    await page.fill('[data-testid="input"]', text)
    await page.click('[data-testid="send"]')


async def renders(page: Page, channel: str | None = None) -> list[str]:
    """The distinct non-empty texts a reply bubble showed on this page load (the last bubble's by default)."""
    recorded: list[list[str]] = await page.evaluate("window.__renders")
    if channel is None:
        channel = recorded[-1][0]
    return [text for ch, text in recorded if ch == channel and text]


def assert_grows(shown: list[str], final: str) -> None:
    """Every render is a prefix of the final text and longer than the one before: nothing repeated or skipped."""
    for before, after in itertools.pairwise(shown):
        assert len(after) > len(before), (before, after)
    for text in shown:
        assert final.startswith(text), (text, final)


async def last_reply(page: Page) -> tuple[str, str]:
    """(channel id, text) of the last answer on the page."""
    bubble = page.locator("li.assistant").last
    channel = await bubble.get_attribute("data-channel") or ""
    return channel, await bubble.locator('[data-testid="reply"]').inner_text()
