"""The merchant API's docs page (/api/docs) in a real browser: Swagger UI renders the
portal's OpenAPI document under the portal's Content-Security-Policy, at localhost and
at a name like a production portal's (Swagger UI treats localhost apart)."""
import pytest

from support.browser import artifacts_folder, assert_security_headers, launch

DESKTOP = {"width": 1280, "height": 900}
AN_OPERATION = "Ask for a login e-mail (the same answer whoever asks)"
# A name of the reserved .test domain that this browser resolves to this machine.
PORTAL_NAME = "portal.test"


@pytest.fixture(scope="module")
def named_portal_browser(chromium):
    """A browser that finds the portal at PORTAL_NAME as well."""
    browser = launch(chromium.browser_type, f"--host-resolver-rules=MAP {PORTAL_NAME} 127.0.0.1")
    yield browser
    browser.close()


@pytest.mark.parametrize("host", ["localhost", PORTAL_NAME])
def test_the_docs_page_renders_swagger_ui_and_breaks_no_csp_rule(system, named_portal_browser, host):
    context = named_portal_browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(15_000)
    console, failures = [], []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: failures.append(str(error)))
    try:
        answer = page.goto(f"http://{host}:{system.gateway_port}/api/docs")
        assert_security_headers(answer.all_headers(), f"http://localhost:{system.billing_port}")
        assert not csp_violations(console)  # a script the policy blocked says so by now
        operation = page.get_by_text(AN_OPERATION, exact=True)
        operation.wait_for(state="visible")
        operation.click()  # opened: its request body and answers, highlighted
        page.get_by_role("heading", name="Responses").wait_for(state="visible")
        page.screenshot(path=str(artifacts_folder("api-docs") / f"{host}.png"), full_page=True)
    finally:
        context.close()
    assert not csp_violations(console)
    assert not failures, failures


def csp_violations(console):
    return [line for line in console if "Content Security Policy" in line]
