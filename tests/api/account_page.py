"""Drives the account page in headless Chromium (Debian's chromium and chromedriver) with
Selenium; tests/api/account.rs starts the server and runs one scenario of this file:

    account_page.py SCENARIO BASE_URL USER PASSWORD TENANT [SCREENSHOT_DIR]

Scenarios: sessions, refresh, errors, outage. Each step says what it checks on stderr; any
failed check raises. The last line on stdout is "ok" when every check held.
"""

import json
import os
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
BASIC = "Basic ZWdvdi11c2VyLWNsaWVudDo="
FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36"
)
WAIT = 10


def step(text):
    print(f"- {text}", file=sys.stderr, flush=True)


# ---- the API, as another client sees it ------------------------------------------------------


class Api:
    def __init__(self, base):
        self.base = base

    def request(self, method, path, headers=None, data=None):
        req = urllib.request.Request(self.base + path, method=method, headers=headers or {}, data=data)
        try:
            with urllib.request.urlopen(req, timeout=10) as res:
                return res.status, res.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def login(self, user, password, tenant, user_agent):
        form = urllib.parse.urlencode(
            {"grant_type": "password", "username": user, "password": password, "tenantId": tenant}
        ).encode()
        status, body = self.request(
            "POST",
            "/user/oauth/token",
            {
                "Authorization": BASIC,
                "Content-Type": "application/x-www-form-urlencoded",
                "User-Agent": user_agent,
            },
            form,
        )
        assert status == 200, f"API login: {status} {body!r}"
        return json.loads(body)

    def details_status(self, access):
        status, _ = self.request("GET", "/user/_details?access_token=" + urllib.parse.quote(access))
        return status

    def sessions(self, access):
        status, body = self.request("GET", "/user/sessions", {"Authorization": "Bearer " + access})
        assert status == 200, f"GET /user/sessions: {status} {body!r}"
        return json.loads(body)["sessions"]

    def own_session_id(self, access):
        return next(s["id"] for s in self.sessions(access) if s["current"])


def assert_live(api, tokens):
    for name, token in tokens.items():
        assert api.details_status(token) == 200, f"{name}'s access token should answer 200"


def assert_ended(api, tokens):
    for name, token in tokens.items():
        assert api.details_status(token) == 401, f"{name}'s access token should answer 401"


# ---- the browser -------------------------------------------------------------------------------


class Page:
    """The account page in a fresh headless Chromium, with its console and network logs."""

    def __init__(self, base):
        for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
            if not os.access(path, os.X_OK):
                sys.exit(f"{path} is missing: install Debian's chromium and chromium-driver "
                         f"(apt-get install -y chromium chromium-driver); {package} provides it")
        self.base = base
        self.profile = tempfile.TemporaryDirectory(prefix="account-page-")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in (
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--lang=en-GB",
            "--window-size=1280,900",
            f"--user-data-dir={self.profile.name}",
        ):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        # Given a driver and a browser, Selenium Manager has nothing to download.
        self.driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
        self.console = []
        self.network = []

    def close(self):
        self.driver.quit()
        self.profile.cleanup()

    def open(self, path="/account/"):
        self.driver.get(self.base + path)
        self.wait(lambda d: d.execute_script("return document.readyState") == "complete")
        # The module enables the form once it runs.
        self.wait(lambda d: d.find_element(By.ID, "login").is_enabled())

    def wait(self, condition, what="the page", timeout=WAIT):
        wait = WebDriverWait(self.driver, timeout, ignored_exceptions=[StaleElementReferenceException])
        return wait.until(condition, f"timed out waiting for {what}")

    # -- finding things the way people and screen readers do --

    def control(self, label):
        """The form control whose accessible name is exactly `label`."""
        target = self.driver.find_element(By.XPATH, f"//label[normalize-space(.)='{label}']")
        element = self.driver.find_element(By.ID, target.get_attribute("for"))
        assert element.accessible_name == label, f"{label!r} is named {element.accessible_name!r}"
        return element

    def buttons(self, name, within=None):
        root = within or self.driver
        found = [
            b
            for b in root.find_elements(By.XPATH, f".//button[normalize-space(.)='{name}']")
            if b.is_displayed()
        ]
        for b in found:
            assert b.accessible_name == name, f"button {name!r} is named {b.accessible_name!r}"
        return found

    def button(self, name):
        found = self.buttons(name)
        assert len(found) == 1, f"{len(found)} visible buttons {name!r}"
        return found[0]

    def signed_in(self):
        return self.driver.find_element(By.ID, "account").is_displayed()

    def sign_in_shown(self):
        return self.driver.find_element(By.ID, "login-form").is_displayed()

    def alert(self, within):
        element = self.driver.find_element(By.CSS_SELECTOR, f"#{within} [role=alert]")
        return element.text.strip()

    def status(self, element_id):
        return self.driver.find_element(By.ID, element_id).text.strip()

    def entries(self):
        """The listed sessions, top to bottom: id, device, "This device", how many "End" buttons."""
        return self.driver.execute_script(
            """
            return [...document.querySelectorAll('#sessions > li')].map((li) => ({
              id: li.dataset.id,
              device: li.querySelector('h2').textContent.trim(),
              this_device: li.innerText.includes('This device'),
              end: [...li.querySelectorAll('button')].filter((b) => b.textContent.trim() === 'End').length,
              busy: [...li.querySelectorAll('button')].some((b) => b.disabled),
              text: li.innerText,
            }));
            """
        )

    def wait_for_entries(self, count, what):
        self.wait(lambda d: len(e := self.entries()) == count and not any(x["busy"] for x in e), what)
        entries = self.entries()
        # Every End button is named exactly that, for people and for screen readers.
        assert len(self.buttons("End")) == sum(e["end"] for e in entries), "every End button is named exactly End"
        return entries

    def end_button(self, session_id):
        item = self.driver.find_element(By.CSS_SELECTOR, f'#sessions > li[data-id="{session_id}"]')
        found = self.buttons("End", item)
        assert len(found) == 1, f"{len(found)} End buttons on {session_id}"
        return found[0]

    # -- logging in --

    def log_in(self, user, password, tenant="", keyboard=False):
        name = self.control("User name")
        if keyboard:
            # The field has the focus when the page opens: type, Tab to the next, Enter submits.
            active = self.driver.switch_to.active_element
            assert active == name, "User name should have the focus when the page opens"
            active.send_keys(Keys.CONTROL, "a")
            active.send_keys(user, Keys.TAB)
            self.driver.switch_to.active_element.send_keys(password, Keys.TAB)
            focused = self.driver.switch_to.active_element
            assert focused == self.control("Tenant"), "Tab from Password should reach Tenant"
            focused.send_keys(Keys.CONTROL, "a")
            focused.send_keys(tenant, Keys.ENTER)
        else:
            name.clear()
            name.send_keys(user)
            self.control("Password").clear()
            self.control("Password").send_keys(password)
            self.control("Tenant").clear()
            self.control("Tenant").send_keys(tenant)
            self.button("Log in").click()

    # -- what the browser saw --

    def drain_logs(self):
        self.console += self.driver.get_log("browser")
        for entry in self.driver.get_log("performance"):
            self.network.append(json.loads(entry["message"])["message"])

    def token_exchanges(self):
        """Every answered request to the token endpoint: (grant_type, status, request id)."""
        self.drain_logs()
        grants, statuses = {}, {}
        for m in self.network:
            params = m.get("params", {})
            if m["method"] == "Network.requestWillBeSent":
                request = params["request"]
                if request["url"].endswith("/user/oauth/token") and request["method"] == "POST":
                    form = urllib.parse.parse_qs(request.get("postData", ""))
                    grants[params["requestId"]] = form.get("grant_type", ["?"])[0]
            elif m["method"] == "Network.responseReceived":
                statuses[params["requestId"]] = params["response"]["status"]
        return [(grants[r], statuses[r], r) for r in grants if r in statuses]

    def own_token(self):
        """The body of the latest successful token response the page received."""
        latest = [r for grant, status, r in self.token_exchanges() if status == 200][-1]
        body = self.driver.execute_cdp_cmd("Network.getResponseBody", {"requestId": latest})
        return json.loads(body["body"])

    def assert_nothing_stored(self):
        stored = self.driver.execute_script(
            "return [localStorage.length, sessionStorage.length, document.cookie]"
        )
        assert stored == [0, 0, ""], f"the page stored something: {stored}"

    def assert_no_csp_violation(self):
        self.drain_logs()
        bad = [
            e["message"]
            for e in self.console
            if "Content Security Policy" in e["message"]
            or "Content-Security-Policy" in e["message"]
            or "Uncaught" in e["message"]
            or "TrustedHTML" in e["message"]
        ]
        assert not bad, f"the console shows CSP violations or script errors: {bad}"

    def screenshot(self, path, width, dark):
        """The whole page at `width` CSS pixels in the light or dark scheme, as a PNG."""
        cdp = self.driver.execute_cdp_cmd
        scheme = "dark" if dark else "light"
        cdp("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": scheme}]})
        metrics = {"width": width, "height": 800, "deviceScaleFactor": 1, "mobile": width < 600}
        cdp("Emulation.setDeviceMetricsOverride", metrics)
        inner, content = self.driver.execute_script(
            "return [innerWidth, document.documentElement.scrollWidth]"
        )
        assert inner == width, f"the viewport is {inner} px wide, not {width}"
        assert content <= width, f"at {width} px the page is {content} px wide (sideways scrolling)"
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        cdp("Emulation.setDeviceMetricsOverride", {**metrics, "height": height})
        shot = cdp("Page.captureScreenshot", {"format": "png"})
        background = self.driver.execute_script("return getComputedStyle(document.body).backgroundColor")
        cdp("Emulation.clearDeviceMetricsOverride", {})
        cdp("Emulation.setEmulatedMedia", {"features": []})
        import base64

        with open(path, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        return background


# ---- the scenarios -----------------------------------------------------------------------------


def luminance(css_rgb):
    parts = [int(float(p)) for p in css_rgb[css_rgb.index("(") + 1 : css_rgb.index(")")].split(",")[:3]]
    return sum(parts) / 3


def sessions(base, user, password, tenant, shots):
    api = Api(base)
    page = Page(base)
    try:
        step("a probe session started through the API (curl)")
        probe = api.login(user, password, tenant, "curl/8.5.0")["access_token"]

        step("/account redirects to /account/, which shows the sign-in form")
        page.open("/account")
        assert page.driver.current_url == base + "/account/", page.driver.current_url
        assert page.sign_in_shown() and not page.signed_in(), "the sign-in form, not the sessions"
        for label in ("User name", "Password", "Tenant", "User type"):
            page.control(label)
        page.button("Log in")

        step("a wrong password shows an alert and nothing else changes")
        page.log_in(user, password + "-wrong", tenant)
        page.wait(lambda d: page.alert("sign-in"), "the login alert")
        assert "wrong" in page.alert("sign-in"), page.alert("sign-in")
        assert page.sign_in_shown() and not page.signed_in(), "a wrong password leaves the sign-in form in place"
        assert page.control("User name").get_attribute("value") == user, "a wrong password keeps the user name"
        assert [s["id"] for s in api.sessions(probe)] == [api.own_session_id(probe)], \
            "a wrong password must not start a session"
        assert [g for g, s, _ in page.token_exchanges() if s == 200] == []
        page.assert_nothing_stored()
        page.screenshot(os.path.join(shots, "account-sign-in-360.png"), 360, dark=False)

        step("logging in with the keyboard alone shows the sessions, this one marked 'This device'")
        page.open()
        page.log_in(user, password, tenant, keyboard=True)
        page.wait(lambda d: page.signed_in(), "the sessions view")
        entries = page.wait_for_entries(2, "two sessions: this device and the probe")
        own = page.own_token()["access_token"]
        own_id = api.own_session_id(own)
        marked = [e for e in entries if e["this_device"]]
        assert [e["id"] for e in marked] == [own_id], f"'This device' marks {marked}, not {own_id}"
        assert marked[0]["end"] == 0, "this device has no End button (Log out ends it)"
        assert marked[0]["device"] == "Chrome on Linux", marked[0]["device"]
        assert "Expires" in marked[0]["text"], marked[0]["text"]
        probe_entry = next(e for e in entries if not e["this_device"])
        assert probe_entry["device"] == "curl" and probe_entry["end"] == 1, probe_entry
        for field in ("Address", "Started", "Last refreshed", "127.0.0.1"):
            assert field in probe_entry["text"], f"{field!r} missing from {probe_entry['text']!r}"
        page.assert_nothing_stored()

        step("two sessions started through the API appear after Refresh, newest first")
        first = api.login(user, password, tenant, FIREFOX_WINDOWS)["access_token"]
        time.sleep(0.01)
        second = api.login(user, password, tenant, CHROME_ANDROID)["access_token"]
        assert len(page.entries()) == 2, "the list changes only when asked"
        page.button("Refresh").click()
        entries = page.wait_for_entries(4, "four sessions after Refresh")
        first_id, second_id = api.own_session_id(first), api.own_session_id(second)
        newest_first = [s["id"] for s in sorted(api.sessions(own), key=lambda s: -s["created"])]
        assert [e["id"] for e in entries] == newest_first, (entries, newest_first)
        by_id = {e["id"]: e for e in entries}
        assert by_id[first_id]["device"] == "Firefox on Windows", by_id[first_id]["device"]
        assert by_id[second_id]["device"] == "Chrome on Android", by_id[second_id]["device"]
        assert [e["id"] for e in entries if e["this_device"]] == [own_id], f"'This device' should mark {own_id} only: {entries}"
        assert all(e["end"] == 1 for e in entries if not e["this_device"]), f"an End button on every other session: {entries}"

        step("the page reads well at 1280 px (light) and 360 px (dark), and follows the scheme")
        light = page.screenshot(os.path.join(shots, "account-1280.png"), 1280, dark=False)
        dark = page.screenshot(os.path.join(shots, "account-360.png"), 360, dark=True)
        assert luminance(light) > 200 and luminance(dark) < 60, (light, dark)

        step("End (pressed with the keyboard) on one session makes exactly that token answer 401")
        page.end_button(first_id).send_keys(Keys.ENTER)
        entries = page.wait_for_entries(3, "three sessions after End")
        assert first_id not in [e["id"] for e in entries], f"the ended session is still listed: {entries}"
        assert_ended(api, {"Firefox on Windows": first})
        assert_live(api, {"Chrome on Android": second, "the probe": probe, "this page": own})
        assert page.driver.switch_to.active_element.text == "End", "the focus stays on an End button"
        page.wait(lambda d: "Ended the session on Firefox on Windows" in page.status("account-status"),
                  "the status after End")

        step("End all other sessions leaves only this device")
        page.button("End all other sessions").click()
        entries = page.wait_for_entries(1, "only this device")
        assert entries[0]["id"] == own_id and entries[0]["this_device"], entries
        assert_ended(api, {"Chrome on Android": second, "the probe": probe})
        assert_live(api, {"this page": own})
        assert not page.button("End all other sessions").is_enabled(), "nothing left to end: the button is off"

        step("Log out returns to the sign-in form and the page's own token answers 401")
        page.button("Log out").click()
        page.wait(lambda d: page.sign_in_shown() and not page.signed_in(), "the sign-in form")
        assert_ended(api, {"this page": own})
        assert page.control("Password").get_attribute("value") == "", "the password is not kept after Log out"
        page.wait(lambda d: page.status("login-status") == "You have logged out.", "the logout status")
        assert page.driver.switch_to.active_element == page.control("User name"), "after Log out the focus is on User name"
        page.assert_nothing_stored()

        step("the page ran under its own CSP: no violation, no script error in the console")
        page.assert_no_csp_violation()
    finally:
        page.close()


def refresh(base, user, password, tenant, _shots):
    """Run with a 3 s access token: the page must refresh it before it expires."""
    api = Api(base)
    page = Page(base)
    try:
        step("log in; the access token lives 3 s")
        page.open()
        page.log_in(user, password, tenant)
        page.wait_for_entries(1, "this device")
        first = page.own_token()
        assert first["expires_in"] <= 5, f"the server should issue short tokens here: {first['expires_in']}"

        step("the page trades its refresh token before the access token expires")
        page.wait(lambda d: sum(1 for g, s, _ in page.token_exchanges() if g == "refresh_token" and s == 200) >= 3,
                  "three refreshes", timeout=15)
        latest = page.own_token()["access_token"]
        assert_ended(api, {"the first access token": first["access_token"]})
        assert_live(api, {"the latest access token": latest})
        failed = [(g, s) for g, s, _ in page.token_exchanges() if s != 200]
        assert failed == [], f"every token request should succeed: {failed}"

        step("Refresh still lists this device, with no alert")
        page.button("Refresh").click()
        time.sleep(0.5)
        entries = page.wait_for_entries(1, "this device after Refresh")
        assert entries[0]["this_device"], entries
        assert page.alert("account") == "", page.alert("account")

        step("tokens live in memory only: a reload asks to log in again")
        page.assert_nothing_stored()
        page.driver.refresh()
        page.wait(lambda d: page.sign_in_shown() and not page.signed_in(), "the sign-in form after reload")
        page.assert_nothing_stored()
        page.assert_no_csp_violation()
    finally:
        page.close()


def errors(base, user, password, tenant, _shots):
    """Run with a small lockout and per-address budget: each refusal has its own sentence."""
    page = Page(base)
    try:
        page.open()
        seen = []
        step("wrong passwords, then a locked account, then throttling, each in role=alert")
        for _ in range(12):
            page.log_in(user, password + "-wrong", tenant)
            page.wait(lambda d: page.alert("sign-in") and page.button("Log in").is_enabled(), "the alert")
            text = page.alert("sign-in")
            if not seen or seen[-1] != text:
                seen.append(text)
            if "Too many login attempts" in text:
                break
        step(f"sentences: {seen}")
        assert any("user name or password is wrong" in s for s in seen), seen
        assert any("account is locked" in s for s in seen), seen
        assert any(s.startswith("Too many login attempts from your network. Wait ") for s in seen), seen
        assert page.sign_in_shown() and not page.signed_in(), "a refused login leaves the sign-in form in place"
        page.assert_nothing_stored()
        page.assert_no_csp_violation()
    finally:
        page.close()


def outage(base, user, password, tenant, _shots):
    """Run with the store stopped: the login says the server cannot log in now."""
    page = Page(base)
    try:
        step("with the store away, a login shows the outage sentence in role=alert")
        page.open()
        page.log_in(user, password, tenant)
        page.wait(lambda d: page.alert("sign-in"), "the alert")
        text = page.alert("sign-in")
        assert text == "The server cannot log you in right now. Try again in a moment.", text
        assert page.sign_in_shown() and not page.signed_in(), "a refused login leaves the sign-in form in place"
        page.assert_no_csp_violation()
    finally:
        page.close()


if __name__ == "__main__":
    scenario, base, user, password, tenant = sys.argv[1:6]
    shots = sys.argv[6] if len(sys.argv) > 6 else tempfile.mkdtemp(prefix="account-shots-")
    {"sessions": sessions, "refresh": refresh, "errors": errors, "outage": outage}[scenario](
        base, user, password, tenant, shots
    )
    print("ok")
