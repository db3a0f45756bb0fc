"""Real-browser machinery for tests/test_browser.py: a JupyterLab server, headless Chromium, a notebook page.

Everything runs locally: JupyterLab on 127.0.0.1 without a token, its config, settings, workspaces and
runtime files in a temporary folder (nothing in ``~`` is touched), and the system Chromium driven by the
system chromedriver through Selenium 4 (no browser or driver is ever downloaded). The notebook page
talks to JupyterLab through ``window.jupyterapp`` (``--LabApp.expose_app_in_browser``) to open, run and
inspect the notebook, and to the widgets only as a user does: keyboard keys on the slider, text read from
the page.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

INSTALL_HINT = (
    "the browser tests need Chromium and its driver: install the Debian/Ubuntu packages "
    "`chromium chromium-driver` (apt-get install chromium chromium-driver), or point "
    "REIDLAB_CHROMIUM and REIDLAB_CHROMEDRIVER at a Chromium/Chrome binary and the matching chromedriver"
)
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1400,1000", "--lang=en-US",
)
# Settings a fresh JupyterLab user would otherwise be asked about (the news toast) or that reach the internet.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
}
CLUSTER_COUNT = re.compile(r"clusters:\s*(\d+)")


class BrowserTestError(AssertionError):
    """A step of the browser flow failed; the message says which step and what the page showed."""


def wait_for(condition: Callable[[], Any], *, timeout: float, interval: float = 0.2, what: str) -> Any:
    """Poll ``condition`` until it returns a truthy value (returned) or raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise BrowserTestError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------- JupyterLab server


class JupyterLabServer:
    """JupyterLab serving ``root_dir`` on a free local port, with every Jupyter folder inside ``home``.

    Args:
        root_dir: the folder JupyterLab serves (notebooks are written there).
        home: a scratch folder for config, data, runtime, settings, workspaces and the server log.
        python: the interpreter whose JupyterLab and kernel run (this one by default).
    """

    def __init__(self, root_dir: Path, home: Path, *, python: str = sys.executable) -> None:
        self.root_dir, self.home, self.python = Path(root_dir), Path(home), python
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.home / "jupyterlab.log"
        self.process: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        """This process's environment with every per-user Jupyter/IPython folder moved under ``home``."""
        folders = {
            "JUPYTER_CONFIG_DIR": "config", "JUPYTER_DATA_DIR": "data", "JUPYTER_RUNTIME_DIR": "runtime",
            "JUPYTERLAB_SETTINGS_DIR": "settings", "JUPYTERLAB_WORKSPACES_DIR": "workspaces", "IPYTHONDIR": "ipython",
        }
        env = {k: v for k, v in os.environ.items() if k not in ("JUPYTER_TOKEN", "JUPYTER_PASSWORD")}
        for name, folder in folders.items():
            (self.home / folder).mkdir(parents=True, exist_ok=True)
            env[name] = str(self.home / folder)
        env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"  # the kernel's debugger warns about frozen modules otherwise
        return env

    def command(self) -> list[str]:
        return [
            self.python, "-m", "jupyter", "lab", "--no-browser",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
            "--IdentityProvider.token=", "--ServerApp.password=", "--ServerApp.allow_root=True",
            f"--ServerApp.root_dir={self.root_dir}",
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]

    def start(self, *, timeout: float = 60.0) -> JupyterLabServer:
        """Start the server (its own process group) and wait until ``/api/status`` answers."""
        env = self.env()
        for name, values in LAB_SETTINGS.items():
            path = Path(env["JUPYTERLAB_SETTINGS_DIR"]) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        self.root_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command(), env=env, cwd=self.root_dir, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        try:
            wait_for(self._answers, timeout=timeout, interval=0.3, what=f"JupyterLab at {self.url}")
        except BrowserTestError as error:
            self.stop()
            raise BrowserTestError(f"{error}\n--- server log ---\n{self.log_tail()}") from None
        return self

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise BrowserTestError(
                f"JupyterLab exited with code {self.process.returncode}\n--- server log ---\n{self.log_tail()}"
            )
        try:
            with urllib.request.urlopen(f"{self.url}/api/status", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else "(no log)"

    def stop(self, *, timeout: float = 20.0) -> None:
        """SIGTERM the server's process group (the server shuts its kernels down), SIGKILL it if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        pgid = os.getpgid(self.process.pid)
        os.killpg(pgid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.process.wait(10)

    def __enter__(self) -> JupyterLabServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# ---------------------------------------------------------------- Chromium


def find_browser() -> tuple[str, str]:
    """Paths of Chromium and chromedriver: ``$REIDLAB_CHROMIUM`` / ``$REIDLAB_CHROMEDRIVER``, else ``PATH``.

    Raises:
        FileNotFoundError: with :data:`INSTALL_HINT` when either is missing.
    """
    browser = os.environ.get("REIDLAB_CHROMIUM") or next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)
    driver = os.environ.get("REIDLAB_CHROMEDRIVER") or shutil.which("chromedriver")
    found = {"chromium": browser, "chromedriver": driver}
    missing = [name for name, path in found.items() if not path or not Path(path).is_file()]
    if missing:
        raise FileNotFoundError(f"{' and '.join(missing)} not found; {INSTALL_HINT}")
    return browser, driver


def start_chromium(profile_dir: Path, log_path: Path):
    """A headless Chromium driven by the system chromedriver (Selenium Manager is never used)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = find_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile_dir}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # Chromium's GLib/GTK side writes under XDG folders (~/.cache/dconf otherwise): keep them in the profile.
    env = {**os.environ, "XDG_CACHE_HOME": str(profile_dir / "cache"), "XDG_CONFIG_HOME": str(profile_dir / "config")}
    service = Service(driver, log_output=str(log_path), env=env)
    return webdriver.Chrome(service=service, options=options)


# ---------------------------------------------------------------- the notebook page

# The open notebook panel whose path is `arguments[0]` (JupyterLab's shell, main area).
_FIND_PANEL = """
const app = window.jupyterapp;
const panel = app && Array.from(app.shell.widgets('main')).find(w => w.context && w.context.path === arguments[0]);
"""
_PANEL_STATE = _FIND_PANEL + """
if (!panel) { return null; }
const kernel = panel.sessionContext.session ? panel.sessionContext.session.kernel : null;
return {ready: panel.context.isReady, kernel: kernel ? kernel.status : null,
        connection: kernel ? kernel.connectionStatus : null};
"""
_RUN_ALL = _FIND_PANEL + """
const done = arguments[arguments.length - 1];
app.shell.activateById(panel.id);
app.commands.execute('notebook:run-all-cells').then(ok => done({ok: ok}), err => done({error: String(err)}));
"""
_ERRORS = _FIND_PANEL + """
const errors = [];
for (const cell of panel.content.widgets) {
  if (cell.model.type !== 'code') { continue; }
  for (const out of cell.model.outputs.toJSON()) {
    if (out.output_type === 'error') {
      errors.push(out.ename + ': ' + out.evalue + '\\n' + (out.traceback || []).join('\\n').replace(/\\x1b\\[[0-9;]*m/g, ''));
    }
  }
}
return errors;
"""
_WATCH_KERNEL = _FIND_PANEL + """
const kernel = panel.sessionContext.session.kernel;
if (window.__reidlabWatched !== kernel) {
  window.__reidlabWatched = kernel;
  kernel.statusChanged.connect((_, status) => window.__reidlabStatuses.push(status));
}
window.__reidlabStatuses = [];
"""
_KERNEL_ACTIVITY = _FIND_PANEL + """
return [window.__reidlabStatuses.length, window.__reidlabStatuses.includes('busy'),
        panel.sessionContext.session.kernel.status];
"""
# Value, min and max of the noUiSlider that the handle `arguments[0]` belongs to.
_SLIDER_STATE = """
const slider = arguments[0].closest('.noUi-target').noUiSlider;
return [Number(slider.get()), slider.options.range.min, slider.options.range.max];
"""
# The eps slider's handle and the summary of the same widget box (the nearest ancestor holding both).
_EXPLORER = """
const sliders = document.querySelectorAll('.reidlab-eps-slider');
for (const slider of sliders) {
  const handle = slider.querySelector('.noUi-handle');
  let box = slider.parentElement;
  while (box && !box.querySelector('.reidlab-cluster-summary')) { box = box.parentElement; }
  if (handle && box) { return [handle, box.querySelector('.reidlab-cluster-summary')]; }
}
return null;
"""


class NotebookPage:
    """A notebook opened in JupyterLab in ``driver``; run it and drive its eps explorer.

    Args:
        driver: a Selenium WebDriver.
        server: the JupyterLab server serving the notebook.
        name: the notebook's path relative to the server's root.
        screenshots: folder of the screenshots (``<stem>-<label>.png``).
    """

    def __init__(self, driver, server: JupyterLabServer, name: str, screenshots: Path) -> None:
        self.driver, self.server, self.name = driver, server, name
        self.screenshots = Path(screenshots)
        self.screenshots.mkdir(parents=True, exist_ok=True)

    def screenshot(self, label: str) -> Path:
        path = self.screenshots / f"{Path(self.name).stem}-{label}.png"
        self.driver.save_screenshot(str(path))
        return path

    def open(self, *, timeout: float = 90.0) -> None:
        """Load ``/lab/tree/<name>`` and wait until the notebook is open with an idle, connected kernel."""
        self.driver.get(f"{self.server.url}/lab/tree/{self.name}?reset")  # ?reset: no tabs from earlier tests

        def kernel_idle() -> bool:
            state = self.driver.execute_script(_PANEL_STATE, self.name)
            return bool(state and state["ready"] and state["kernel"] == "idle" and state["connection"] == "connected")

        wait_for(kernel_idle, timeout=timeout, interval=0.3, what=f"{self.name} open with an idle kernel")

    def run_all(self, *, timeout: float = 180.0) -> None:
        """Run > Run All Cells, wait until every cell has run and raise with the tracebacks if one failed."""
        from selenium.common.exceptions import TimeoutException

        self.driver.set_script_timeout(timeout)
        try:
            result = self.driver.execute_async_script(_RUN_ALL, self.name)
        except TimeoutException:
            raise BrowserTestError(f"the cells of {self.name} were still running after {timeout:.0f} s") from None
        errors = self.driver.execute_script(_ERRORS, self.name)
        if errors or not (result or {}).get("ok"):
            raise BrowserTestError(f"running all cells of {self.name} failed ({result}):\n" + "\n\n".join(errors))

    def explorer(self, *, timeout: float = 30.0):
        """The eps slider's handle and the summary element, once the widget has rendered."""

        def rendered():
            return self.driver.execute_script(_EXPLORER)

        try:
            handle, summary = wait_for(rendered, timeout=timeout, what="the eps explorer widget to render")
        except BrowserTestError as error:
            outputs = self.driver.execute_script(
                "return Array.from(document.querySelectorAll('.jp-OutputArea-output')).map(e => e.textContent)"
                ".filter(t => /widget|slider|box/i.test(t)).join('\\n').slice(0, 2000);"
            )
            raise BrowserTestError(
                f"{error}: no element '.reidlab-eps-slider .noUi-handle' with a '.reidlab-cluster-summary' beside "
                f"it in {self.name}; widget-like outputs on the page:\n{outputs}\n"
                f"browser console:\n{self.console()}"
            ) from None
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", handle)
        return handle, summary

    def eps(self, handle) -> tuple[float, float, float]:
        """(value, min, max) of the eps slider in the page (its noUiSlider; ARIA values are rounded to 0.1)."""
        return tuple(self.driver.execute_script(_SLIDER_STATE, handle))

    def cluster_count(self, summary) -> int:
        """The N of the summary's ``clusters: N``."""
        text = self.driver.execute_script("return arguments[0].textContent;", summary)
        match = CLUSTER_COUNT.search(text)
        if match is None:
            raise BrowserTestError(f"the cluster summary must contain 'clusters: <N>', it shows {text!r}")
        return int(match.group(1))

    def press(self, handle, key: str, *, timeout: float = 60.0) -> None:
        """Press ``key`` on the focused slider handle and wait for the kernel's reaction to finish.

        The kernel's status is watched from just before the key press: done once it has been busy and has
        then stayed idle for three polls (the widget update it sent arrives before its idle status).
        """
        self.driver.execute_script(_WATCH_KERNEL, self.name)
        self.driver.execute_script("arguments[0].focus();", handle)
        handle.send_keys(key)
        stable = {"polls": 0, "seen": -1}

        def settled() -> bool:
            count, was_busy, status = self.driver.execute_script(_KERNEL_ACTIVITY, self.name)
            quiet = was_busy and status == "idle" and count == stable["seen"]
            stable["polls"], stable["seen"] = (stable["polls"] + 1 if quiet else 0), count
            return stable["polls"] >= 3

        wait_for(settled, timeout=timeout, interval=0.2, what="the kernel to handle the eps change (busy, then idle)")

    def console(self) -> str:
        """The browser console's warnings and errors (for failure messages)."""
        try:
            entries = self.driver.get_log("browser")
        except Exception as error:  # noqa: BLE001 - diagnostics only
            return f"(console unavailable: {error})"
        return "\n".join(e["message"] for e in entries if e["level"] in ("WARNING", "SEVERE"))[-3000:]
