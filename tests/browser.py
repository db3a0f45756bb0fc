"""Real-browser machinery for tests/test_browser.py: a JupyterLab server, headless Chromium, a notebook page.

Everything runs locally: JupyterLab on 127.0.0.1 without a token, its config, settings, workspaces and
runtime files in a temporary folder (nothing in ``~`` is touched), and the system Chromium driven by the
system chromedriver through Selenium 4 (no browser or driver is ever downloaded). The notebook page
talks to JupyterLab through ``window.jupyterapp`` (``--LabApp.expose_app_in_browser``) to open, run,
inspect and close the notebook, and to the widgets only as a user does: any ipywidgets control is found
by its description (:meth:`NotebookPage.control`) and operated with keyboard keys on a slider's handle,
a selection in a dropdown or a click (:meth:`NotebookPage.move`); what it changed is read from the page
(the texts and image bytes of the widget box around it, :class:`Snapshot`).
"""

from __future__ import annotations

import dataclasses
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
    # Every cell attached to the page, so every widget can be found (JupyterLab 4 may window long notebooks).
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


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
        environment: variables set for the server and its kernels (e.g. ``OMP_NUM_THREADS``).
    """

    def __init__(self, root_dir: Path, home: Path, *, python: str = sys.executable,
                 environment: dict[str, str] | None = None) -> None:
        self.root_dir, self.home, self.python = Path(root_dir), Path(home), python
        self.environment = dict(environment or {})
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
        env.update(self.environment)
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
_SHUTDOWN = _FIND_PANEL + """
const done = arguments[arguments.length - 1];
if (!panel) { done(null); return; }
panel.context.model.dirty = false;  // no "leave site?" prompt when the page navigates away
panel.sessionContext.shutdown().then(() => { panel.dispose(); done(null); }, err => done(String(err)));
"""

# ---------------------------------------------------------------- widgets in the page (ipywidgets 8 DOM)

# The controls a user operates, by kind: the CSS class of the control's root element.
CONTROL_KINDS = {
    "slider": "widget-slider",  # IntSlider, FloatSlider, FloatLogSlider (a noUiSlider with a .widget-readout)
    "dropdown": "widget-dropdown",  # a <select>
    "checkbox": "widget-checkbox",  # an <input type=checkbox> next to its description
    "button": "widget-button",
    "toggle": "widget-toggle-button",
}
# Interactive widgets NotebookPage cannot operate: found as kind "unsupported", so an inventory shows them.
UNSUPPORTED_CONTROLS = (
    "widget-text", "widget-textarea", "widget-radio", "widget-toggle-buttons", "widget-select",
    "widget-select-multiple", "widget-play", "widget-colorpicker", "widget-datepicker", "widget-combobox",
    "widget-tagsinput",
)
# A control's linked output: its nearest enclosing box holding an Output or Image widget.
OUTPUT_WIDGETS = ".widget-output, .widget-image"

# Every control in the notebook panel: [{kind, label, element}], label = the widget's description.
_CONTROLS = _FIND_PANEL + """
if (!panel) { return null; }
const kinds = Object.entries(arguments[1]).concat(arguments[2].map(c => ['unsupported', c]));
function label(el, kind) {
  if (kind === 'button' || kind === 'toggle') { return el.textContent.trim(); }
  const text = kind === 'checkbox' ? el.querySelector('.widget-label-basic span') : el.querySelector(':scope > .widget-label');
  return text ? text.textContent.replace(/\\u200b/g, '').trim() : '';
}
const found = [];
for (const [kind, cls] of kinds) {
  for (const el of panel.node.querySelectorAll('.' + cls)) { found.push({kind: kind, label: label(el, kind), element: el}); }
}
return found;
"""
# What the control `arguments[0]` of kind `arguments[1]` shows: its value (noUiSlider's for a slider: the
# exponent for a log slider), its range, and its readout as the user reads it.
_CONTROL_STATE = """
const [el, kind] = arguments;
if (kind === 'slider') {
  const slider = el.querySelector('.noUi-target').noUiSlider;
  const readout = el.querySelector('.widget-readout');
  return {value: Number(slider.get()), min: slider.options.range.min, max: slider.options.range.max,
          readout: readout ? readout.textContent.trim() : null};
}
if (kind === 'dropdown') {
  const select = el.querySelector('select');
  const chosen = select.selectedOptions[0];
  return {value: select.value, options: Array.from(select.options, o => o.textContent.trim()),
          readout: chosen ? chosen.textContent.trim() : null};
}
if (kind === 'checkbox') { const box = el.querySelector('input'); return {value: box.checked, readout: String(box.checked)}; }
if (kind === 'toggle') { const on = el.classList.contains('mod-active'); return {value: on, readout: String(on)}; }
return {value: null, readout: null};
"""
_OUTPUT_BOX = """
let box = arguments[0].parentElement;
while (box && !box.querySelector(arguments[1])) {
  if (box.classList.contains('jp-OutputArea-output')) { return null; }  // the cell's output: no farther
  box = box.parentElement;
}
return box;
"""
# The texts (HTML widgets, text in Output widgets) and images of the box `arguments[0]`: each image's
# SHA-256 (first 16 hex digits) of the bytes it shows and its decoded size (0 until it has loaded).
_SNAPSHOT = """
const [box, done] = [arguments[0], arguments[arguments.length - 1]];
const texts = Array.from(box.querySelectorAll('.widget-html-content, .widget-output .jp-RenderedText'),
                         e => e.textContent.trim());
const images = Array.from(box.querySelectorAll('img'));
const hex = buffer => Array.from(new Uint8Array(buffer).slice(0, 8), b => b.toString(16).padStart(2, '0')).join('');
const digest = img => fetch(img.src).then(r => r.arrayBuffer()).then(b => crypto.subtle.digest('SHA-256', b)).then(hex);
Promise.all(images.map(digest)).then(
  digests => done({texts: texts, images: images.map((img, i) => [digests[i], img.naturalWidth, img.naturalHeight])}),
  err => done({error: String(err)}));
"""
# [text, number of loaded images in its box] of every element with the CSS class `arguments[1]`.
_SUMMARIES = _FIND_PANEL + """
return Array.from(panel.node.querySelectorAll('.' + arguments[1]), el => {
  const box = el.parentElement;
  const loaded = Array.from(box.querySelectorAll('img')).filter(img => img.complete && img.naturalWidth > 0);
  return [el.textContent.trim(), loaded.length];
});
"""


@dataclasses.dataclass(frozen=True)
class Control:
    """An ipywidgets control found in the page: its kind (a key of :data:`CONTROL_KINDS`), description, element."""

    kind: str
    label: str
    element: Any = dataclasses.field(repr=False, compare=False)


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """What a control's linked output shows: its texts, and ``(sha256 prefix, width, height)`` per image."""

    texts: tuple[str, ...]
    images: tuple[tuple[str, int, int], ...]

    @property
    def text(self) -> str:
        return "\n".join(self.texts)

    @property
    def loaded(self) -> bool:
        """At least one image, and every image decoded."""
        return bool(self.images) and all(width > 0 for _, width, _ in self.images)


@dataclasses.dataclass(frozen=True)
class Move:
    """A control operated once (:meth:`NotebookPage.move`): its state and its output before and after.

    ``value_*`` and ``readout_*`` come from :data:`_CONTROL_STATE` (None for a button).
    """

    control: Control
    action: str
    value_before: Any
    value_after: Any
    readout_before: str | None
    readout_after: str | None
    before: Snapshot
    after: Snapshot
    screenshots: tuple[Path, Path]

    @property
    def output_changed(self) -> bool:
        return self.before != self.after


def slug(text: str) -> str:
    """``"l (parts)"`` -> ``"l-parts"``: a label as a file-name part."""
    return re.sub(r"[^A-Za-z0-9_]+", "-", text).strip("-").lower() or "control"


class NotebookPage:
    """A notebook opened in JupyterLab in ``driver``: run it, find its widgets, operate them as a user does.

    Controls are found by their description (:meth:`control`) and operated with the keyboard (a slider's
    handle: End, Home, arrow keys), a selection (a dropdown) or a click (a checkbox, a button); each
    :meth:`move` waits for the kernel's answer and records the linked output before and after, with a
    screenshot of each.

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

    # ---- the notebook

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

    def close(self, *, timeout: float = 30.0) -> None:
        """Shut the notebook's kernel down and close its tab (unsaved: nothing asks to leave the page)."""
        self.driver.set_script_timeout(timeout)
        error = self.driver.execute_async_script(_SHUTDOWN, self.name)
        if error:
            raise BrowserTestError(f"shutting down the kernel of {self.name} failed: {error}")

    # ---- finding widgets

    def controls(self) -> list[Control]:
        """Every control in the notebook's outputs, in page order per kind (``unsupported``: see
        :data:`UNSUPPORTED_CONTROLS`)."""
        found = self.driver.execute_script(_CONTROLS, self.name, CONTROL_KINDS, list(UNSUPPORTED_CONTROLS)) or []
        return [Control(c["kind"], c["label"], c["element"]) for c in found]

    def control(self, label: str, *, timeout: float = 30.0) -> Control:
        """The one control described ``label``, once rendered.

        Raises:
            BrowserTestError: none (after ``timeout``) or several controls have that label; the message
                lists the controls on the page.
        """

        def matching():
            return [c for c in self.controls() if c.label == label]

        try:
            found = wait_for(matching, timeout=timeout, what=f"a widget described {label!r} to render")
        except BrowserTestError as error:
            shown = sorted({(c.kind, c.label) for c in self.controls()})
            raise BrowserTestError(f"{error} in {self.name}; controls on the page: {shown}\n"
                                   f"browser console:\n{self.console()}") from None
        if len(found) > 1:
            raise BrowserTestError(f"{len(found)} widgets are described {label!r} in {self.name}: give them distinct "
                                   "descriptions (or display the widget once)")
        return found[0]

    def state(self, control: Control) -> dict[str, Any]:
        """``{"value", "readout"}`` (and ``min``/``max`` for a slider, ``options`` for a dropdown)."""
        return self.driver.execute_script(_CONTROL_STATE, control.element, control.kind)

    def output_box(self, control: Control):
        """The nearest widget box around ``control`` that holds an Output or Image widget: its linked output."""
        box = self.driver.execute_script(_OUTPUT_BOX, control.element, OUTPUT_WIDGETS)
        if box is None:
            raise BrowserTestError(f"the {control.kind} {control.label!r} of {self.name} has no Output or Image widget "
                                   "in a box around it: nothing shows what it changes")
        return box

    def snapshot(self, box, *, timeout: float = 30.0) -> Snapshot:
        """The texts and image digests of ``box``, once every image in it has loaded."""
        self.driver.set_script_timeout(timeout)

        def loaded():
            found = self.driver.execute_async_script(_SNAPSHOT, box)
            if "error" in found:
                raise BrowserTestError(f"reading the widget output failed: {found['error']}")
            snap = Snapshot(tuple(found["texts"]), tuple(tuple(image) for image in found["images"]))
            return snap if all(width > 0 for _, width, _ in snap.images) else None

        return wait_for(loaded, timeout=timeout, interval=0.3, what="the widget output's images to load")

    def show(self, selector: str) -> None:
        """Scroll the widget box around the first element matching ``selector`` (CSS) to the top of the page."""
        found = self.driver.execute_script(
            _FIND_PANEL + "const el = panel && panel.node.querySelector(arguments[1]);"
            "if (el) { (el.closest('.widget-box') || el).scrollIntoView({block: 'start'}); } return Boolean(el);",
            self.name, selector)
        if not found:
            raise BrowserTestError(f"nothing matches {selector!r} in {self.name}")

    def summaries(self, css_class: str) -> list[tuple[str, int]]:
        """``(text, loaded images in its box)`` of every element with ``css_class`` (e.g. training monitors)."""
        return [tuple(row) for row in self.driver.execute_script(_SUMMARIES, self.name, css_class)]

    # ---- operating widgets

    def move(self, label: str, *, key: str | None = None, option: str | None = None,
             timeout: float = 90.0) -> Move:
        """Operate the control described ``label`` once, as a user, and return what it showed before and after.

        A slider gets ``key`` on its focused handle (default: End or Home, whichever end is farther from
        its value; equal distance: End); a dropdown selects ``option``; a checkbox, toggle or button is
        clicked. Waits for the kernel's reaction (:meth:`_react`), then up to 10 s for the linked output to
        differ. Screenshots ``<stem>-<label>-before.png`` and ``-after.png``, the output box at the top.
        """
        from selenium.webdriver.common.keys import Keys
        from selenium.webdriver.support.ui import Select

        control = self.control(label)
        box = self.output_box(control)
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", box)
        state_before, before = self.state(control), self.snapshot(box)
        shots = (self.screenshot(f"{slug(label)}-before"),)
        if control.kind == "slider":
            if key is None:
                low, value, high = state_before["min"], state_before["value"], state_before["max"]
                key = Keys.END if high - value >= value - low else Keys.HOME
            handle = control.element.find_element("css selector", ".noUi-handle")
            names = {Keys.END: "End", Keys.HOME: "Home", Keys.LEFT: "Left", Keys.RIGHT: "Right", Keys.UP: "Up",
                     Keys.DOWN: "Down", Keys.PAGE_UP: "PageUp", Keys.PAGE_DOWN: "PageDown"}
            action = f"pressed {names.get(key, repr(key))}"

            def act():
                self.driver.execute_script("arguments[0].focus();", handle)
                handle.send_keys(key)
        elif control.kind == "dropdown":
            if option is None:
                raise ValueError(f"moving the dropdown {label!r} needs the option to select")
            action = f"selected {option!r}"

            def act():
                Select(control.element.find_element("css selector", "select")).select_by_visible_text(option)
        elif control.kind in ("checkbox", "toggle", "button"):
            target = control.element.find_element("css selector", "input") if control.kind == "checkbox" else control.element
            action = "clicked"

            def act():
                target.click()
        else:
            raise BrowserTestError(f"the {control.kind} widget {label!r} cannot be operated by NotebookPage yet")
        self._react(act, what=f"{action} on {label!r}", timeout=timeout)
        control = self.control(label)  # found again, in case a view was re-rendered
        box = self.output_box(control)

        def changed():
            snap = self.snapshot(box)
            return snap if snap != before else None

        try:
            after = wait_for(changed, timeout=10.0, interval=0.3, what="the output to change")
        except BrowserTestError:
            after = self.snapshot(box)  # unchanged: the caller's assertion says so
        state_after = self.state(control)
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", box)
        shots += (self.screenshot(f"{slug(label)}-after"),)
        return Move(control, action, state_before["value"], state_after["value"], state_before["readout"],
                    state_after["readout"], before, after, shots)

    def _react(self, act: Callable[[], None], *, what: str, timeout: float) -> None:
        """Run ``act`` (a user's action) and wait for the kernel's reaction to finish.

        The kernel's status is watched from just before the action: done once it has been busy and has then
        stayed idle for three polls (the widget update it sent arrives before its idle status).
        """
        self.driver.execute_script(_WATCH_KERNEL, self.name)
        act()
        stable = {"polls": 0, "seen": -1}

        def settled() -> bool:
            count, was_busy, status = self.driver.execute_script(_KERNEL_ACTIVITY, self.name)
            quiet = was_busy and status == "idle" and count == stable["seen"]
            stable["polls"], stable["seen"] = (stable["polls"] + 1 if quiet else 0), count
            return stable["polls"] >= 3

        wait_for(settled, timeout=timeout, interval=0.2,
                 what=f"the kernel to handle {what} (busy, then idle); a control that never makes the kernel busy "
                      "sent no update")

    def console(self) -> str:
        """The browser console's warnings and errors (for failure messages)."""
        try:
            entries = self.driver.get_log("browser")
        except Exception as error:  # noqa: BLE001 - diagnostics only
            return f"(console unavailable: {error})"
        return "\n".join(e["message"] for e in entries if e["level"] in ("WARNING", "SEVERE"))[-3000:]
