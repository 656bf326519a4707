"""The sandbox page in a real headless browser (Debian's chromium driven by Playwright) with the real bot behind it.

Screenshots go to tests/artifacts/ for a person to look at.
"""

from __future__ import annotations

import base64
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Error, Page, expect, sync_playwright
from sandbox_process import Sandbox, png, running_sandbox

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# The bot answers in well under a second; a loaded shared machine needs more.
REPLY_MS = 30_000
RED, BLUE = (230, 20, 20), (20, 20, 230)
ALL_CLASSES = ("楷书 kaishu (regular)", "隶书 lishu (clerical)", "小篆 xiaozhuan (small seal)")
PERCENT = re.compile(r"^\d{1,3}%$")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("chromium is not installed (`make browser` runs apt-get install chromium)")
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        except Error as exc:
            pytest.skip(f"chromium cannot start here: {exc.message.splitlines()[0]}")
        yield browser
        browser.close()


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    with running_sandbox(tmp_path) as running:
        yield running


@pytest.fixture
def page(browser: Browser, sandbox: Sandbox) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 860, "height": 940}, locale="en-GB")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(sandbox.url)
    yield page
    context.close()
    assert not errors, errors


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=path)
    return path


def test_photo_by_file_picker_then_feedback_button(page: Page):
    """Upload an image, read every class's probability, tap '✓ correct', see the thanks and the marked answer."""
    page.locator("#file").set_input_files(files=[{"name": "red.png", "mimeType": "image/png", "buffer": png(RED)}])
    expect(page.locator(".msg.user img.photo").last).to_be_visible(timeout=REPLY_MS)
    reply = page.locator(".msg.bot").filter(has_text="This is 楷书 kaishu").last
    expect(reply).to_be_visible(timeout=REPLY_MS)
    for name in ALL_CLASSES:
        expect(reply.locator(".prob").filter(has_text=name)).to_have_count(1)
    expect(reply.locator(".prob .pct")).to_have_text([PERCENT] * 3)

    reply.get_by_role("button", name="✓ correct").click()
    expect(page.locator("#toast")).to_have_text("Recorded: 楷书 kaishu (regular). Thank you!", timeout=REPLY_MS)
    expect(reply).to_contain_text("Your answer: 楷书 kaishu (regular). Thank you!", timeout=REPLY_MS)
    expect(reply.get_by_role("button", name="• ✓ correct •")).to_be_visible()
    assert screenshot(page, "sandbox-feedback.png").stat().st_size > 10_000


def test_dropped_image_sample_and_admin_commands(page: Page):
    """Drag and drop, a sample, a typed /help, and the admin's own chat: /status, /relabel with the bot's picture."""
    data = base64.b64encode(png(BLUE)).decode()
    page.evaluate(
        """async (data) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], "blue.png", { type: "image/png" }));
            window.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true }));
        }""",
        data,
    )
    expect(page.locator(".msg.bot").filter(has_text="This is 小篆 xiaozhuan")).to_have_count(1, timeout=REPLY_MS)

    page.get_by_role("button", name="Try a sample").click()
    page.locator(".sample").filter(has_text="lishu drawn 1").click()
    expect(page.locator(".msg.user img.photo")).to_have_count(2, timeout=REPLY_MS)
    expect(page.locator(".msg.bot .prob")).to_have_count(6, timeout=REPLY_MS)

    page.get_by_role("textbox", name="Message").fill("/help")
    page.get_by_role("textbox", name="Message").press("Enter")
    expect(page.locator(".msg.bot").filter(has_text="Send me a photo of Chinese calligraphy")).to_be_visible(
        timeout=REPLY_MS
    )

    page.get_by_text("Act as admin").click()
    expect(page.locator("#subtitle")).to_contain_text("admin (in BOT_ADMIN_IDS)")
    expect(page.locator(".msg")).to_have_count(0)
    page.locator(".chip.admin", has_text="/status").click()
    status = page.locator(".msg.bot").filter(has_text="Model: v0001")
    expect(status).to_be_visible(timeout=REPLY_MS)
    expect(status).to_contain_text("Predictions today: 2")

    # The drawn sample is a puzzle for the tests' channel-mean model: unsure, so it waits for an admin's label,
    # and /relabel answers with the image itself, a picture the bot sends.
    page.locator(".chip.admin", has_text="/relabel").click()
    picture = page.locator(".msg.bot img.photo")
    expect(picture).to_be_visible(timeout=REPLY_MS)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=picture.element_handle())
    relabel = page.locator(".msg.bot").filter(has=page.locator("img.photo"))
    relabel.get_by_role("button", name="隶书 lishu").click()
    expect(page.locator("#toast")).to_contain_text("labelled 隶书 lishu (clerical)", timeout=REPLY_MS)
    expect(page.locator(".msg.bot").last).to_have_text(re.compile("No low-confidence images"), timeout=REPLY_MS)
    screenshot(page, "sandbox-admin.png")

    page.get_by_text("Act as admin").click()
    expect(page.locator(".msg.bot .prob")).to_have_count(6)
