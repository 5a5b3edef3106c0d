"""The web console in a real browser: headless Chromium driven by Selenium, against real processes.

The service (``eventconfig serve``) and the gateway (``eventconfig gateway``) run as subprocesses, as
in the README quick start, and the "someone else" of these tests is the ``eventconfig`` CLI. Every
wait is an explicit WebDriverWait on a DOM condition. A screenshot of each page is kept in
``test-artifacts/console/`` (git-ignored) for a person to look at.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from eventconfig.gateway.auth import token_digest

pytestmark = pytest.mark.integration

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1280,860")
WAIT_S = 20
TOKEN = "console-test-token"


@dataclass
class Deployment:
    url: str  # the gateway in development mode
    secure_url: str  # a second gateway, in production mode: TOKEN is the bearer token of actor deploy-bot
    env: dict[str, str]
    workspace: str

    def cli(self, *args: str) -> str:
        """Run ``eventconfig <args>`` as a separate process; its stdout."""
        done = subprocess.run([sys.executable, "-m", "eventconfig", *args], env=self.env, capture_output=True,
                              text=True, timeout=90)
        assert done.returncode == 0, f"eventconfig {' '.join(args)} failed: {done.stderr}"
        return done.stdout

    def put(self, type_: str, key: str, value: str) -> int:
        """A write by someone else: the CLI, in a process of its own, as actor 'cli-user'; its version."""
        out = self.cli("put", "-w", self.workspace, "-t", type_, "-k", key, "--value", value, "--actor", "cli-user")
        match = re.search(r"\(version (\d+)\)", out)
        assert match, out
        return int(match.group(1))

    def seed(self, type_: str, key: str, value: str) -> int:
        """A write through the HTTP API (quicker than a CLI process); its version."""
        put = httpx.put(f"{self.url}/v1/workspaces/{self.workspace}/config/{type_}/{key}", json={"value": value},
                        headers={"x-eventconfig-actor": "seed"}, timeout=60)
        assert put.status_code == 200, put.text
        return int(put.json()["version"])

    def value(self, type_: str, key: str, min_version: int = 0) -> str:
        got = httpx.get(f"{self.url}/v1/workspaces/{self.workspace}/config/{type_}/{key}",
                        params={"min_version": min_version}, timeout=30)
        assert got.status_code == 200, got.text
        return str(got.json()["value"])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_ready(url: str, processes: list[subprocess.Popen[bytes]], logs: list[Path], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        for process, log in zip(processes, logs):
            if process.poll() is not None:
                raise AssertionError(f"{log.name} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"the gateway at {url} was not ready within {timeout} s")
        time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@pytest.fixture(scope="module")
def deployment(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """``eventconfig serve`` and ``eventconfig gateway`` on fresh topics, with some config in one workspace."""
    root = tmp_path_factory.mktemp("console")
    env = {**os.environ, "EVENTCONFIG_BOOTSTRAP_SERVERS": kafka_bootstrap,
           "EVENTCONFIG_TOPIC_PREFIX": f"ui{uuid.uuid4().hex[:10]}", "EVENTCONFIG_DATA_DIR": str(root / "data")}
    url, secure_url = (f"http://127.0.0.1:{_free_port()}" for _ in range(2))
    deployment = Deployment(url, secure_url, env, "acme")
    deployment.cli("topics", "create")
    auth_file = root / "auth.yaml"
    auth_file.write_text(f"tokens:\n  - {{actor: deploy-bot, sha256: {token_digest(TOKEN)}}}\n")
    logs = [root / "serve.log", root / "gateway.log", root / "secure-gateway.log"]
    commands = [["serve"], ["gateway", "--port", url.rsplit(":", 1)[1], "--view-path", str(root / "view")],
                ["gateway", "--port", secure_url.rsplit(":", 1)[1], "--view-path", str(root / "secure-view"),
                 "--auth-file", str(auth_file)]]
    processes = []
    try:
        for command, log in zip(commands, logs):
            with open(log, "wb") as out:
                processes.append(subprocess.Popen([sys.executable, "-m", "eventconfig", *command], env=env,
                                                  stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        for gateway_url in (url, secure_url):
            _wait_ready(gateway_url, processes, logs)
        deployment.seed("flow", "main", '{"steps":[{"name":"fetch","timeout":30},{"name":"answer","model":"large"}],'
                                       '"retries":2}')
        deployment.seed("prompt", "system", "You are a helpful assistant.")
        yield deployment
    finally:
        for process in processes:
            _stop(process)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    assert not missing, f"the browser tests need {', '.join(missing)}: apt-get install chromium chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = Path(tempfile.mkdtemp(prefix="chromium-", dir=tmp_path_factory.getbasetemp()))
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)  # no Selenium Manager
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def artifacts(pytestconfig: pytest.Config) -> Path:
    folder = pytestconfig.rootpath / "test-artifacts" / "console"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def wait_for(driver: WebDriver, condition: Callable[[WebDriver], Any], what: str, timeout: float = WAIT_S) -> Any:
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition, message=f"{what} (within {timeout} s)")


def visible(driver: WebDriver, css: str) -> WebElement | bool:
    try:
        found = driver.find_elements(By.CSS_SELECTOR, css)
        return found[0] if found and found[0].is_displayed() else False
    except StaleElementReferenceException:
        return False


def text_of(driver: WebDriver, css: str) -> str:
    try:
        found = driver.find_elements(By.CSS_SELECTOR, css)
        return found[0].text if found else ""
    except StaleElementReferenceException:  # re-rendered by a live update between find and read
        return ""


def click(driver: WebDriver, css: str) -> None:
    """Click the element, also when a live update re-renders it between finding and clicking."""
    def clicked(d: WebDriver) -> bool:
        try:
            element = visible(d, css)
            if element:
                element.click()
            return bool(element)
        except StaleElementReferenceException:
            return False
    wait_for(driver, clicked, f"a click on {css}")


def open_key(driver: WebDriver, deployment: Deployment, type_: str, key: str, expected: str) -> None:
    """Open one key's page and wait until it shows ``expected`` and the watch stream is live."""
    driver.get(f"{deployment.url}/#/{deployment.workspace}/{type_}/{key}")
    driver.refresh()  # a new hash alone would keep the previous test's page
    wait_for(driver, lambda d: visible(d, "#live-status.live"), "the live indicator")
    wait_for(driver, lambda d: expected in text_of(d, "#key-value"), f"{type_}/{key} showing {expected!r}")


def act_as(driver: WebDriver, name: str) -> None:
    """Development mode's "acting as" box (kept in the browser's storage, so every test sets its own)."""
    actor = driver.find_element(By.ID, "actor-input")
    actor.clear()
    actor.send_keys(f"{name}\t")


def history_entry(driver: WebDriver, version: int) -> str:
    """The text of the key history's entry of ``version`` ("" until it is shown)."""
    return text_of(driver, f'#key-history li.entry[data-version="{version}"]')


def test_an_edit_is_saved_with_compare_and_set_and_shows_its_version_and_history_entry(
        browser, deployment, artifacts):
    before = deployment.seed("prompt", "greeting", '{"text":"hello","lang":"en"}')
    open_key(browser, deployment, "prompt", "greeting", '"text": "hello"')
    assert text_of(browser, "#key-version") == f"version {before}"
    act_as(browser, "console-user")

    click(browser, "#edit-button")
    editor = wait_for(browser, lambda d: visible(d, "#editor"), "the editor")
    editor.clear()
    editor.send_keys('{"text": "hello there", "lang": "en"}')
    click(browser, "#save-button")

    wait_for(browser, lambda d: text_of(d, "#key-version") != f"version {before}", "a new version after saving")
    after = int(text_of(browser, "#key-version").removeprefix("version "))
    assert after > before
    entry = wait_for(browser, lambda d: history_entry(d, after), f"the history entry of version {after}")
    assert "unverified:console-user" in entry
    assert "-   \"text\": \"hello\"," in entry and "+   \"text\": \"hello there\"," in entry
    assert deployment.value("prompt", "greeting", after) == '{"text":"hello there","lang":"en"}'
    browser.save_screenshot(str(artifacts / "key-after-edit.png"))


def test_a_change_made_with_the_cli_appears_without_reloading(browser, deployment, artifacts):
    deployment.seed("prompt", "system", "You are a helpful assistant.")
    open_key(browser, deployment, "prompt", "system", "You are a helpful assistant.")
    browser.execute_script("window.sameDocument = true")

    version = deployment.put("prompt", "system", "You are a concise assistant.")

    wait_for(browser, lambda d: "concise" in text_of(d, "#key-value"), "the CLI's value on the page")
    assert text_of(browser, "#key-version") == f"version {version}"
    entry = wait_for(browser, lambda d: history_entry(d, version), "the CLI's history entry")
    assert "cli-user" in entry
    assert browser.execute_script("return window.sameDocument") is True  # no reload happened
    browser.save_screenshot(str(artifacts / "key-live-update.png"))


def test_a_stale_edit_shows_the_conflict_and_overwrites_nothing(browser, deployment, artifacts):
    deployment.seed("flag", "beta", "off")
    open_key(browser, deployment, "flag", "beta", "off")
    click(browser, "#edit-button")
    editor = wait_for(browser, lambda d: visible(d, "#editor"), "the editor")
    editor.clear()
    editor.send_keys("on")

    theirs = deployment.put("flag", "beta", "rollout-50%")
    wait_for(browser, lambda d: visible(d, "#key-notice"), "the notice that someone else saved meanwhile")
    click(browser, "#save-button")

    conflict = wait_for(browser, lambda d: visible(d, "#conflict"), "the conflict message")
    assert "Not saved" in conflict.text and f"version {theirs}" in conflict.text
    wait_for(browser, lambda d: "rollout-50%" in text_of(d, "#conflict-current"), "the current value in the conflict")
    assert browser.find_element(By.ID, "editor").get_attribute("value") == "on"  # the draft is kept
    assert deployment.value("flag", "beta", theirs) == "rollout-50%"
    browser.save_screenshot(str(artifacts / "key-conflict.png"))

    click(browser, "#conflict-retry")
    click(browser, "#save-button")
    wait_for(browser, lambda d: text_of(d, "#key-value") == "on", "the re-based edit saved")
    assert deployment.value("flag", "beta", theirs + 1) == "on"


def test_workspace_history_and_the_state_at_a_version(browser, deployment, artifacts):
    first = deployment.seed("model", "default", '{"name":"small"}')
    deployment.seed("model", "default", '{"name":"large"}')
    browser.get(f"{deployment.url}/")
    browser.refresh()
    wait_for(browser, lambda d: visible(d, f'#workspaces li[data-workspace="{deployment.workspace}"]'),
             "the workspace list")
    browser.save_screenshot(str(artifacts / "workspaces.png"))

    click(browser, f'#workspaces li[data-workspace="{deployment.workspace}"]')
    wait_for(browser, lambda d: visible(d, f'#ws-history li.entry[data-version="{first}"]'),
             "the workspace history")
    assert "model / default" in text_of(browser, "#ws-history")
    assert visible(browser, '#tree li.key[data-type="model"][data-key="default"]')
    browser.save_screenshot(str(artifacts / "workspace-history.png"))

    click(browser, '.tab[data-tab="state-pane"]')
    field = wait_for(browser, lambda d: visible(d, "#state-at"), "the state form")
    field.send_keys(str(first))
    click(browser, "#state-form button[type=submit]")
    wait_for(browser, lambda d: f"As of version {first}" in text_of(d, "#state-summary"), "the state summary")
    assert '"name": "small"' in text_of(browser, "#state-result")
    click(browser, "#state-diff")
    wait_for(browser, lambda d: "changed: model / default" in text_of(d, "#state-diff-result"), "the diff with now")
    browser.save_screenshot(str(artifacts / "state-at-version.png"))


def test_a_new_key_is_created_only_if_absent_and_a_delete_asks_first(browser, deployment, artifacts):
    browser.get(f"{deployment.url}/#/{deployment.workspace}")
    browser.refresh()
    wait_for(browser, lambda d: visible(d, "#live-status.live"), "the live indicator")
    act_as(browser, "key-keeper")
    click(browser, "#new-key summary")
    for field, text in (("#new-type", "limits"), ("#new-key-name", "rate"), ("#new-value", '{"per_s": 50}')):
        wait_for(browser, lambda d: visible(d, field), f"the field {field}").send_keys(text)
    click(browser, "#new-key-form button[type=submit]")
    wait_for(browser, lambda d: '"per_s": 50' in text_of(d, "#key-value"), "the new key's page")
    created = int(text_of(browser, "#key-version").removeprefix("version "))
    assert deployment.value("limits", "rate", created) == '{"per_s": 50}'

    click(browser, "#new-key-form button[type=submit]")  # the same key again: If-None-Match refuses it
    wait_for(browser, lambda d: "Not created" in text_of(d, "#new-key-status"), "the refusal to create it twice")

    click(browser, "#delete-button")
    wait_for(browser, expected_conditions.alert_is_present(), "the confirmation").accept()
    wait_for(browser, lambda d: text_of(d, "#key-version") == "deleted", "the key shown as deleted")
    # One condition, not a wait then an assert: the history list re-renders as the live changes arrive.
    wait_for(browser, lambda d: "delete ·" in (entry := text_of(d, "#key-history li.entry"))
             and "unverified:key-keeper" in entry, "the delete, by its unverified actor, in the key's history")


def test_a_gateway_with_an_auth_file_signs_in_and_records_the_verified_actor(browser, deployment, artifacts):
    browser.get(f"{deployment.secure_url}/#/{deployment.workspace}/prompt/system")
    browser.refresh()
    wait_for(browser, lambda d: visible(d, "#sign-in"), "the sign-in dialog")
    browser.save_screenshot(str(artifacts / "sign-in.png"))
    wait_for(browser, lambda d: visible(d, "#sign-in-token"), "the token field").send_keys("wrong")
    click(browser, "#sign-in-submit")
    wait_for(browser, lambda d: "not accepted" in text_of(d, "#sign-in-status"), "the refusal of a wrong token")

    token = browser.find_element(By.ID, "sign-in-token")
    token.clear()
    token.send_keys(TOKEN)
    click(browser, "#sign-in-submit")
    wait_for(browser, lambda d: text_of(d, "#identity") == "signed in as deploy-bot", "the signed-in identity")
    wait_for(browser, lambda d: visible(d, "#live-status.live"), "the live indicator")
    assert not visible(browser, "#actor-box")  # no way to choose another actor
    wait_for(browser, lambda d: "assistant" in text_of(d, "#key-value"), "the key's value")
    click(browser, "#edit-button")
    editor = wait_for(browser, lambda d: visible(d, "#editor"), "the editor")
    editor.clear()
    editor.send_keys("You are a signed-in assistant.")
    click(browser, "#save-button")
    wait_for(browser, lambda d: "signed-in" in text_of(d, "#key-value"), "the saved value")
    version = int(text_of(browser, "#key-version").removeprefix("version "))
    entry = wait_for(browser, lambda d: history_entry(d, version), "the history entry")
    assert "deploy-bot" in entry and "unverified" not in entry
    browser.save_screenshot(str(artifacts / "signed-in.png"))


def test_the_editor_shows_the_schema_refuses_an_invalid_draft_inline_and_the_services_refusal_too(
        browser, deployment, artifacts):
    schema = '{"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}'
    put = httpx.put(f"{deployment.url}/v1/workspaces/__schemas__/config/template/{deployment.workspace}",
                    json={"value": schema}, headers={"x-eventconfig-actor": "admin"}, timeout=60)
    assert put.status_code == 200, put.text
    deployment.seed("template", "welcome", '{"text": "hi"}')
    open_key(browser, deployment, "template", "welcome", '"text": "hi"')
    wait_for(browser, lambda d: visible(d, "#schema-box"), "the type's schema")
    click(browser, "#schema-box summary")
    assert '"required": [' in text_of(browser, "#schema-text")

    click(browser, "#edit-button")
    editor = wait_for(browser, lambda d: visible(d, "#editor"), "the editor")
    editor.clear()
    editor.send_keys('{"text": 42}')
    refusal = wait_for(browser, lambda d: visible(d, "#validation.refused"), "the draft refused as it is typed")
    assert "$.text" in refusal.text and "42 is not of type 'string'" in refusal.text
    click(browser, "#save-button")
    wait_for(browser, lambda d: "fix the value first" in text_of(d, "#save-status"), "saving refused before sending")
    browser.save_screenshot(str(artifacts / "key-invalid-draft.png"))

    editor.clear()
    editor.send_keys('{"text": "hello"}')
    wait_for(browser, lambda d: visible(d, "#validation.ok"), "the fixed draft accepted")
    click(browser, "#save-button")
    wait_for(browser, lambda d: '"text": "hello"' in text_of(d, "#key-value"), "the valid draft saved")

    # A schema that arrives while the page is open: only the service can refuse the draft, inline as well.
    deployment.seed("note", "n", "free text")
    open_key(browser, deployment, "note", "n", "free text")
    click(browser, "#edit-button")
    editor = wait_for(browser, lambda d: visible(d, "#editor"), "the editor")
    put = httpx.put(f"{deployment.url}/v1/workspaces/__schemas__/config/note/*", json={"value": '{"type": "object"}'},
                    headers={"x-eventconfig-actor": "admin"}, timeout=60)
    assert put.status_code == 200, put.text
    editor.clear()
    editor.send_keys("still free text")
    click(browser, "#save-button")
    refusal = wait_for(browser, lambda d: visible(d, "#validation.refused"), "the service's refusal, inline")
    assert "note/n at $: not JSON" in refusal.text
    assert "refused" in text_of(browser, "#save-status")
    wait_for(browser, lambda d: visible(d, "#schema-box"), "the schema the page learnt from the refusal")
    assert visible(browser, "#validation.refused"), "the refusal stays shown"
    assert text_of(browser, "#key-value") == "free text"
    assert deployment.value("note", "n") == "free text"
    browser.save_screenshot(str(artifacts / "key-refused-by-service.png"))
