"""A real Chromium for tests (Debian's, through Playwright) that reports every Content-Security-
Policy violation a page causes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"  # never `playwright install`: browsers cannot be downloaded here
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# Chromium writes a refused script, style, image or connection to the console itself; the
# securitypolicyviolation event catches what it might not, on every page the tab opens. (An init
# script comes from DevTools, which the page's policy does not govern.)
_REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} ${event.blockedURI}`);
});
"""


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class WatchedPage:
    """A new tab whose console is read for CSP violations and whose script errors are kept."""

    def __init__(self, browser: Browser, **options):
        self.page: Page = browser.new_page(**options)
        self.csp_violations: list[str] = []
        self.script_errors: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.script_errors.append(str(error)))
        self.page.add_init_script(_REPORT_VIOLATIONS)

    def _console(self, message: ConsoleMessage) -> None:
        text = message.text
        if "Content Security Policy" in text or text.startswith("CSP violation"):
            self.csp_violations.append(f"{self.page.url}: {text}")

    def assert_clean(self) -> None:
        """No page the tab opened broke the policy or failed in its scripts."""
        assert self.csp_violations == []
        assert self.script_errors == []
