"""Driving the running portal in Debian's chromium through Playwright.

Playwright's own browser download cannot be reached here, so the browser is always
`/usr/bin/chromium` (devtools/bootstrap.sh --for-tests installs it). Every page a
test looks at goes through `BuyerBrowser.check`: a screenshot saved as an artifact,
the security headers of the answer, and axe-core with no serious or critical
violation.
"""
import re
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from axe_playwright_python.sync_playwright import Axe

from services.common.config import REPO_ROOT
from services.common.urls import origin_of
from support.portal_client import inbox_ids, login_email

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
]
# One folder per run of the suite.
ARTIFACTS = REPO_ROOT / "var" / "artifacts" / "browser" / time.strftime("%Y%m%d-%H%M%S")
BLOCKING_IMPACTS = {"serious", "critical"}
AXE = Axe()


def launch(browser_type, *extra_args):
    """Debian's chromium, through Playwright's `browser_type` (`playwright.chromium`)."""
    return browser_type.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args])


def artifacts_folder(name):
    folder = ARTIFACTS / name
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots of the browser tests: {folder}")
    return folder


@contextmanager
def foreign_site(pages):
    """Another site on this machine (127.0.0.1, a port of its own) answering `pages`
    ({path: html}); yields its base URL. (A site Playwright made up would be a public
    one to Chromium, and its local-network checks would refuse the portal first.)"""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = pages.get(self.path, "").encode()
            self.send_response(200 if self.path in pages else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def blocking_violations(page):
    """axe-core's serious and critical violations on the page, as readable lines."""
    results = AXE.run(page)
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']} — "
        + "; ".join(node["target"][0] if isinstance(node["target"][0], str) else str(node["target"])
                    for node in violation["nodes"][:3])
        for violation in results.response["violations"] if violation["impact"] in BLOCKING_IMPACTS
    ]


def assert_security_headers(headers, billing_url):
    """The headers every portal page must carry (Playwright gives names in lower case)."""
    policy = headers["content-security-policy"]
    directives = {part.split()[0]: part.split()[1:] for part in policy.split("; ")}
    assert re.fullmatch(r"'nonce-[A-Za-z0-9_-]{20,}'", directives["script-src"][0]), policy
    assert directives["object-src"] == ["'none'"] and directives["base-uri"] == ["'none'"], policy
    assert directives["frame-ancestors"] == ["'none'"], policy
    assert directives["frame-src"] == [origin_of(billing_url)], policy
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] in ("same-origin", "no-referrer")
    # The portal under test is served over http: HSTS is for https only (tests/unit/gateway).
    assert "strict-transport-security" not in headers


class BuyerBrowser:
    """One browser page of the portal, with the checks every page passes."""

    def __init__(self, page, system, folder):
        self.page = page
        self.system = system
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.documents = []
        self.shots = 0
        self.nonces = set()
        self.checked_answer = None
        page.on("response", self._seen)

    def _seen(self, response):
        if response.request.resource_type == "document" and response.url.startswith(self.system.gateway_url):
            self.documents.append(response)

    def open(self, path):
        self.page.goto(f"{self.system.gateway_url}{path}")
        return self

    def check(self, name):
        """Screenshot, headers of the page's answer, accessibility."""
        self.page.wait_for_load_state("load")
        self.shots += 1
        self.page.screenshot(path=str(self.folder / f"{self.shots:02d}-{name}.png"), full_page=True)
        answer = self.documents[-1]
        assert answer.url.split("?")[0] == self.page.url.split("?")[0], (answer.url, self.page.url)
        headers = answer.all_headers()
        assert_security_headers(headers, f"http://localhost:{self.system.billing_port}")
        nonce = re.search(r"'nonce-([^']+)'", headers["content-security-policy"]).group(1)
        if answer is not self.checked_answer:  # not the same page again, changed only inside its frame
            assert nonce not in self.nonces, "a nonce was used twice"
            self.nonces.add(nonce)
            self.checked_answer = answer
        violations = blocking_violations(self.page)
        assert not violations, f"{name}: " + "\n".join(violations)
        assert "Traceback" not in self.page.content()

    def log_in(self, email):
        """The login of a buyer: the form, then the link of the real e-mail in the sink."""
        before = inbox_ids(self.system, email)
        self.open("/")
        self.check("login")
        self.page.get_by_label("E-mail").fill(email)
        self.submit("Enviar link de acesso")
        self.check("check-email")
        message = login_email(self.system, email, before)
        link = next(link for link in message["links"] if link.startswith(self.system.gateway_url) and "token=" in link)
        self.page.goto(link)
        self.check("link-landing")
        with self.page.expect_navigation():
            self.page.get_by_role("button", name=re.compile("^Continuar como")).click()

    def follow(self, link_name):
        """Click a link of the page and wait for the page it opens."""
        with self.page.expect_navigation():
            self.page.get_by_role("link", name=link_name, exact=True).first.click()

    def submit(self, button_name):
        """Press a form's button and wait for the page that answers."""
        with self.page.expect_navigation():
            self.page.get_by_role("button", name=button_name, exact=True).first.click()

    def notice(self):
        return self.page.get_by_role("status").first.inner_text()

    def csrf_token(self):
        return self.page.locator("input[name=csrf_token]").first.get_attribute("value")
