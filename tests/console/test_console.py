"""The console in Debian's Chromium (Playwright): each page's main action performed through the UI against a real
gateway, with a fake OpenAI server and a webhook receiver on loopback. Screenshots go to docs/console-*.png.

One browser for the module, one test walking the pages in the order an operator would: sign in, create a key, add a
provider and test it, create a workflow from shorthand (seeing the compiled schema and a field error), send a
playground message and watch it stream, open its request detail, find it in the log, re-run it, replay a webhook,
overview.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from playwright.async_api import Browser, Page, async_playwright, expect

from sluice.providers.registry import TYPES
from sluice.testing import FakeProvider
from tests.conftest import MASTER_KEY, StartGateway, chat_body, paced_config, write_config
from tests.delivery.receiver import running_receiver

CHROMIUM = "/usr/bin/chromium"  # Debian's package; Playwright never downloads a browser here
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DOCS = Path(__file__).resolve().parents[2] / "docs"
ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}
expect.set_options(timeout=20_000)


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


async def shot(page: Page, name: str) -> None:
    DOCS.mkdir(exist_ok=True)
    await page.screenshot(path=str(DOCS / f"console-{name}.png"), full_page=True)


async def test_console_pages_main_actions(start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await start_gateway(
        config_path=paced_config(tmp_path, 15), extra={"webhook_retry_schedule": [0, 0.05], "webhook_jitter": 0}
    )
    errors: list[str] = []
    async with (
        FakeProvider("openai") as fake,
        running_receiver() as receiver,
        chromium() as browser,
        httpx.AsyncClient(base_url=gw.url, headers=ADMIN, timeout=10) as client,
    ):
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        # The 422s the workflow form provokes on purpose are logged by Chromium as failed loads; nothing else may be.
        page.on(
            "console",
            lambda message: (
                errors.append(message.text) if message.type == "error" and "status of 422" not in message.text else None
            ),
        )

        # Sign in: an unsigned visit goes to the sign-in page and comes back.
        await page.goto(f"{gw.url}/console/keys")
        await expect(page).to_have_url(f"{gw.url}/console/login?next=%2Fconsole%2Fkeys")
        await page.fill("#admin-key", MASTER_KEY)
        await page.click("button[type=submit]")
        await expect(page).to_have_url(f"{gw.url}/console/keys")

        # API keys: create one (shown once, and it works), then revoke it.
        await page.fill("#key-name", "console backend")
        await page.click("#create-key button[type=submit]")
        await expect(page.locator("#new-key-value")).to_contain_text("sk_sluice_")
        new_key = await page.locator("#new-key-value").inner_text()
        accepted = await client.post("/v1/ai/async", json=chat_body(), headers={"Authorization": f"Bearer {new_key}"})
        assert accepted.status_code == 202
        row = page.locator("#keys tbody tr", has_text="console backend")
        await expect(row).to_contain_text("active")
        await shot(page, "keys")
        await row.locator("button[data-revoke]").click()
        await row.locator("button[data-revoke]").click()  # confirm
        await expect(row).not_to_contain_text("active")
        refused = await client.post("/v1/ai/async", json=chat_body(), headers={"Authorization": f"Bearer {new_key}"})
        assert refused.status_code == 401

        # Providers: the types and their options come from the registry (GET /v1/admin/providers/types).
        await page.click("[data-nav=providers]")
        await expect(page.locator("#provider-type option")).to_have_count(len(TYPES))
        assert await page.locator("#provider-type option").all_inner_texts() == list(TYPES)
        await page.select_option("#provider-type", "anthropic")
        await expect(page.locator("#provider-type-hint")).to_have_text(TYPES["anthropic"].description)
        hints = page.locator("#provider-option-hints")
        await expect(hints.locator("[data-option=max_tokens]")).to_contain_text("integer = 4096")
        await expect(hints.locator("[data-option=structured_output]")).to_contain_text("tool | output_format")
        await expect(hints.locator("[data-option=breaker]")).to_contain_text("failures: integer = 5")
        await expect(hints.locator("[data-option=headers]")).to_contain_text("secret")
        await page.select_option("#provider-type", "simulated")
        await expect(page.locator("#provider-base-url")).to_be_hidden()
        await expect(page.locator("#provider-api-key")).to_be_hidden()
        # A misspelt option is refused by name, before anything is stored.
        await page.fill("#provider-name", "fake-openai")
        await page.select_option("#provider-type", "openai")
        await expect(page.locator("#provider-base-url")).to_have_attribute(
            "placeholder", "Default: https://api.openai.com/v1."
        )
        await page.fill("#provider-options", '{"stream_usag": false}')
        await page.click("#provider-save")
        await expect(page.locator("#provider-error")).to_contain_text("options.stream_usag: unknown option")
        await page.fill("#provider-options", "")
        # Add one with an API key, test the connection against the fake OpenAI server.
        await page.fill("#provider-base-url", fake.base_url)
        await page.fill("#provider-api-key", "sk-from-the-console")
        await page.click("#provider-save")
        row = page.locator("#providers tbody tr[data-provider=fake-openai]")
        await expect(row).to_contain_text("api_key")
        await page.fill("#test-model", "gpt-test")
        await row.get_by_role("button", name="Test").click()
        await expect(row.locator(".connection")).to_contain_text("answered in")
        assert fake.requests[-1].headers["authorization"] == "Bearer sk-from-the-console"
        assert "sk-from-the-console" not in await page.content()
        await shot(page, "providers")

        # Workflows: shorthand schema compiled live, a typo shown by field, a missing model refused by field.
        await page.click("[data-nav=workflows]")
        await page.fill("#wf-name", "console_flow")
        await page.locator(".wf-provider").select_option("simulated")
        await page.fill("#wf-schema", "reply: string\nmood: happy | sad\ntopics: array<strng>")
        await expect(page.locator("#wf-schema-error")).to_contain_text("did you mean 'string'")
        await page.fill("#wf-schema", "reply: string\nmood: happy | sad\ntopics: array<string>")
        await expect(page.locator("#wf-compiled")).to_contain_text('"enum"')
        await expect(page.locator("#wf-schema-error")).to_be_hidden()
        await page.click("#wf-save")
        await expect(page.locator("#workflow-error")).to_contain_text("chain[0].model")
        await expect(page.locator(".wf-model.invalid")).to_have_count(1)
        await shot(page, "workflows")
        await page.fill(".wf-model", "sim-1")
        await page.fill("#wf-system", "You answer briefly.")
        await page.click("#wf-save")
        await expect(page.locator("#workflows tbody tr[data-workflow=console_flow]")).to_contain_text("simulated/sim-1")
        assert gw.gateway.catalog.workflow("console_flow") is not None

        # Playground: the message streams through the browser SDK, then the structured object is final.
        await page.goto(f"{gw.url}/console/playground?workflow=console_flow")
        await expect(page.locator("#pg-workflow")).to_have_value("console_flow")
        await page.fill("#pg-message", "Tell me something happy about streaming tokens to the browser")
        await page.click("#pg-send")
        await expect(page.locator("#pg-status")).to_have_text("completed")
        texts: list[str] = await page.evaluate("window.__pgTexts")
        assert len([t for t in texts if t]) >= 5, texts  # the text grew over several renders
        await expect(page.locator("#pg-message-out")).to_contain_text('"mood"')
        channel = await page.locator("#pg-output").get_attribute("data-channel")
        await shot(page, "playground")

        # Request detail: timeline, attempts, result.
        await page.click("#pg-detail")
        await expect(page).to_have_url(f"{gw.url}/console/requests/{channel}")
        await expect(page.locator("#summary")).to_contain_text("completed")
        await expect(page.locator("#timeline li[data-type=stream]")).to_contain_text("deltas")
        await expect(page.locator("#timeline li[data-type=response]")).to_have_count(1)
        await expect(page.locator("#attempts tbody tr")).to_contain_text("simulated")
        await expect(page.locator("#result")).to_contain_text('"reply"')
        await shot(page, "request")

        # Request log: live (a request submitted now shows up by itself), then filtered by a metadata value.
        await page.click("[data-nav=requests]")
        await expect(page.locator(f"#requests tbody tr[data-request='{channel}']")).to_have_count(1)
        live = (await client.post("/v1/ai/async", json=chat_body("arrives live", metadata={"user": "u7"}))).json()
        await expect(page.locator(f"#requests tbody tr[data-request='{live['channel_id']}']")).to_contain_text("u7")
        await page.fill("#f-metadata", "source=console-playground")
        await page.click("#filters button[type=submit]")
        await expect(page.locator("#requests tbody tr")).to_have_count(1)
        await expect(page.locator(f"#requests tbody tr[data-request='{channel}']")).to_contain_text("console_flow")
        await shot(page, "requests")

        # Re-run from its detail page: a finished request runs again as a new request, whose page opens.
        await page.goto(f"{gw.url}/console/requests/{channel}")
        await page.click("#rerun")
        await expect(page).not_to_have_url(f"{gw.url}/console/requests/{channel}")
        await expect(page.locator("#summary")).to_contain_text("completed")
        await expect(page.locator("#request-body")).to_contain_text(f'"rerun_of": "{channel}"')
        await expect(page.locator("#rerun")).to_be_visible()

        # Webhook deliveries: inspect one and replay it (the receiver gets the same webhook-id again).
        hooked = await client.post("/v1/ai/async", json=chat_body("hook me", webhook_url=receiver.url))
        first = await receiver.next(wait=15)
        await page.click("[data-nav=webhooks]")
        row = page.locator("#deliveries tbody tr").first
        await expect(row).to_contain_text("delivered")
        await row.click()
        await expect(page.locator("#delivery-payload")).to_contain_text(hooked.json()["channel_id"])
        await expect(page.locator("#delivery-attempts tbody tr")).to_have_count(1)
        await page.click("#replay")
        await expect(page.locator("#replay-result")).to_have_text("Replay queued.")
        again = await receiver.next(wait=15)
        assert again.headers["webhook-id"] == first.headers["webhook-id"]
        await expect(page.locator("#delivery-attempts tbody tr")).to_have_count(2)
        await expect(row).to_contain_text("delivered")  # the list refreshes by itself
        await shot(page, "webhooks")

        # Overview: the traffic shows in the totals, charts and provider health.
        await page.click("[data-nav=overview]")
        await expect(page.locator("[data-stat='requests (1 h)'] .value")).not_to_have_text("0")
        await expect(page.locator("svg.chart")).to_have_count(4)
        await expect(page.locator("#health tbody")).to_contain_text("closed")
        await asyncio.sleep(0.2)  # let the last chart paint before the screenshot
        await shot(page, "overview")

        # Sign out forgets the key.
        await page.click("#signout")
        await expect(page).to_have_url(f"{gw.url}/console/login")
        assert await page.evaluate("sessionStorage.getItem('sluice.adminKey')") is None
    assert errors == []


async def test_spend_page_and_key_budgets(start_gateway: StartGateway, tmp_path: Path) -> None:
    """A key created with a budget from the keys page; its spend there, and on the spend page per day, workflow,
    model and key, with charts."""
    config = write_config(
        tmp_path,
        "providers:\n  simulated: {type: simulated, pace_ms: 0, prices: {sim-1: {input: 2000, output: 8000}}}\n",
    )
    gw = await start_gateway(config_path=config)
    errors: list[str] = []
    async with chromium() as browser, httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        page = await browser.new_page(viewport={"width": 1280, "height": 1000})
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        await page.goto(f"{gw.url}/console/login?next=%2Fconsole%2Fkeys")
        await page.fill("#admin-key", MASTER_KEY)
        await page.click("button[type=submit]")
        await page.fill("#key-name", "budgeted backend")
        await page.fill("#key-budget", "5")
        await page.select_option("#key-period", "daily")
        await page.fill("#key-rpm", "100")
        await page.click("#create-key button[type=submit]")
        await expect(page.locator("#new-key-value")).to_contain_text("sk_sluice_")
        key = await page.locator("#new-key-value").inner_text()
        costs = []
        for text in ("one question", "another question, a little longer"):
            answer = await client.post(
                "/v1/ai", json=chat_body(text, max_tokens=200), headers={"Authorization": f"Bearer {key}"}
            )
            costs.append(answer.json()["meta"]["cost_usd"])
        await page.reload()
        row = page.locator("#keys tbody tr", has_text="budgeted backend")
        await expect(row).to_contain_text("$5.00 / day")
        await expect(row).to_contain_text("100 rpm")
        spent = f"${sum(costs):.3g}" if sum(costs) < 1 else f"${sum(costs):.2f}"
        await expect(row).to_contain_text(spent)

        await page.click("[data-nav=spend]")
        await expect(page.locator("svg.chart")).to_have_count(4)
        await expect(page.locator("[data-stat='requests'] .value")).to_have_text("2")
        await expect(page.locator("#by-workflow tbody")).to_contain_text("demo")
        await expect(page.locator("#by-model tbody")).to_contain_text("simulated/sim-1")
        await expect(page.locator("#by-key tbody")).to_contain_text("budgeted backend")
        await expect(page.locator("#by-key tbody")).to_contain_text(spent)
        await asyncio.sleep(0.2)  # let the last chart paint before the screenshot
        await shot(page, "spend")
    assert errors == []
