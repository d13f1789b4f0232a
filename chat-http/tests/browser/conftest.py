"""Fixtures of the web client's browser tests: a chat-server on a SQLite file, the system
Chromium driven by Playwright, and a small API client for setting the scene.

Run them with `scripts/browser-tests.sh`, which installs what they need.
"""

import json
import os
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[3]
SERVER = Path(os.environ.get("CHAT_SERVER", ROOT / "target" / "debug" / "chat-server"))
CHROMIUM = os.environ.get("CHAT_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = ROOT / "target" / "screenshots"
PASSWORD = "correct horse battery"


class Server:
    """A chat-server process on a fixed port and database, so it can be restarted in place."""

    def __init__(self, directory):
        self.database = f"sqlite://{directory / 'chat.db'}"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [
                str(SERVER),
                "--bind", f"127.0.0.1:{self.port}",
                "--database", self.database,
                "--durability", "normal",
                # Every test logs in from one address, many times, and some set the scene with
                # a hundred sends.
                "--auth-per-minute", "0",
                "--sends-per-second", "0",
                "--log", "warn",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for line in self.process.stdout:
            if line.startswith("chat-server listening on "):
                break
        else:
            raise RuntimeError("chat-server exited before listening")
        return self

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


class Api:
    """The REST API as one user, for what a test arranges outside the page."""

    def __init__(self, base, username):
        self.base = base
        self.username = username
        self.token = None

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + "/api/v1" + path, data=data, method=method)
        if data is not None:
            request.add_header("content-type", "application/json")
        if self.token:
            request.add_header("authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                text = response.read()
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{method} {path}: {error.code} {error.read()!r}") from None
        return json.loads(text) if text else None

    def register(self):
        self.call("POST", "/auth/register", {"username": self.username, "password": PASSWORD})
        return self.log_in()

    def log_in(self):
        answer = self.call("POST", "/auth/login", {"username": self.username, "password": PASSWORD})
        self.token = answer["access_token"]
        self.id = answer["user"]["id"]
        return self

    def create_room(self, name):
        return self.call("POST", "/rooms", {"name": name})["id"]

    def join(self, room):
        self.call("POST", f"/rooms/{room}/join", {})

    def send(self, room, body):
        return self.call("POST", f"/rooms/{room}/messages", {"body": body})


@pytest.fixture
def server(tmp_path):
    server = Server(tmp_path).start()
    yield server
    if server.process.poll() is None:
        server.stop()


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            # As root in a sandboxed machine with no outside network: no sandbox of Chromium's
            # own, and none of its background connections.
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def open_page(browser, server):
    """`open_page()` is a new browser context (its own storage: another person) at the client."""
    contexts = []

    def open_page(width=1100, height=720):
        context = browser.new_context(viewport={"width": width, "height": height})
        context.set_default_timeout(15000)
        contexts.append(context)
        page = context.new_page()
        page.goto(server.base + "/")
        return page

    yield open_page
    for context in contexts:
        context.close()


def screenshot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def log_in(page, username, register=False):
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("register-submit" if register else "login-submit").click()
    page.get_by_test_id("logout").wait_for()
