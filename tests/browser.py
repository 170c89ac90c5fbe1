"""A headless Chromium for the tests that need a real browser (selenium).

The browser tests open pages from ``file://`` with every http(s) request
blocked, so a page that still needs the network fails them. They skip, with
the message below, where Chromium, its driver or selenium is missing;
``.ci/run`` installs all three, so CI always runs them.
"""

from __future__ import annotations

import os
import shutil
import time

import pytest

HOW_TO_ENABLE = (
    "browser tests skipped: they need Chromium, chromedriver and selenium. Enable them with "
    "`apt-get install chromium chromium-driver` (Debian/Ubuntu) and `.venv/bin/pip install selenium`, "
    "or run `.ci/run`, which installs them"
)

# Every element of the page, shadow roots included (Bokeh draws its widgets in shadow DOM).
DEEP_QUERY = """
const selector = arguments[0];
const found = [];
const walk = (root) => {
  root.querySelectorAll(selector).forEach((e) => found.push(e));
  root.querySelectorAll('*').forEach((e) => { if (e.shadowRoot) walk(e.shadowRoot); });
};
walk(document);
return found;
"""


def _missing() -> None:
    # .ci/run sets NEUROHASH_REQUIRE_BROWSER=1: there a missing browser fails the tests
    if os.environ.get("NEUROHASH_REQUIRE_BROWSER") == "1":
        pytest.fail(HOW_TO_ENABLE.replace("skipped", "cannot run"), pytrace=False)
    pytest.skip(HOW_TO_ENABLE)


def find_browser() -> tuple[str, str]:
    """Paths of Chromium and chromedriver; pytest.skip with how to enable them when missing."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        _missing()
    chromium = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        _missing()
    return chromium, driver


def start_browser(width: int = 1100, height: int = 1400):
    """A headless Chromium with console logging on and http(s) blocked."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = find_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--window-size={width},{height}", "--no-first-run", "--disable-extensions"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["http://*", "https://*", "ws://*", "wss://*"]})
    return driver


def console_errors(driver) -> list[str]:
    """The console's errors since the last call (the log is drained by reading it)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def wait_for(driver, script: str, timeout: float = 20.0, *args):
    """Poll ``script`` (JavaScript returning a value) until it is truthy; return it."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(script, *args)
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


# --------------------------------------------------------------------------
# Chapter 8's browser explorer: read what it shows, work its controls
# --------------------------------------------------------------------------
def explorer_shown(driver, timeout: float = 20.0) -> dict:
    """The state and results the explorer's neighbours panel shows (its data-* attributes)."""
    element = wait_for(driver, f"const e = (() => {{ {DEEP_QUERY} }})(); return e.length ? e[0] : null;",
                       timeout, "[data-nh=neighbours]")
    assert element is not None, "the explorer drew no neighbours panel"
    attributes = driver.execute_script(
        "const a = {}; for (const x of arguments[0].attributes) a[x.name] = x.value; return a;", element)
    number = lambda text: float("nan") if text in ("NaN", "null", "") else float(text)  # noqa: E731
    return {"query": int(attributes["data-query"]), "modality": attributes["data-modality"],
            "n_bits": int(attributes["data-bits"]), "radius": int(attributes["data-radius"]),
            "rows": [int(x) for x in attributes["data-rows"].split(",") if x],
            "distances": [int(x) for x in attributes["data-distances"].split(",") if x],
            "precision": number(attributes["data-precision"]), "recall": number(attributes["data-recall"]),
            "n_inside": int(attributes["data-inside"]),
            "text": driver.execute_script("return arguments[0].innerText", element)}


def _deep_elements(driver, selector: str):
    return driver.execute_script(DEEP_QUERY, selector)


def choose_query(driver, row: int) -> None:
    """Pick a query subject in the explorer's <select> (its options are in row order), as a reader does."""
    (select,) = _deep_elements(driver, "select")
    driver.execute_script("arguments[0].selectedIndex = arguments[1];"
                          "arguments[0].dispatchEvent(new Event('input', {bubbles: true}));"
                          "arguments[0].dispatchEvent(new Event('change', {bubbles: true}));", select, int(row))


def click_button(driver, label: str) -> None:
    """Click the radio button whose text is ``label`` (modality: sMRI / PET; code length: K = 16 ...)."""
    buttons = [b for b in _deep_elements(driver, "button, .bk-btn") if b.text.strip() == label]
    assert buttons, f"no button {label!r}"
    buttons[0].click()


def move_radius(driver, steps: int) -> None:
    """Move the radius slider's handle by ``steps`` with the arrow keys, as a keyboard reader does."""
    from selenium.webdriver.common.keys import Keys

    (handle,) = _deep_elements(driver, ".noUi-handle")
    key = Keys.ARROW_RIGHT if steps > 0 else Keys.ARROW_LEFT
    for _ in range(abs(steps)):
        handle.send_keys(key)


def wait_until_shown(driver, **expected) -> dict:
    """Wait until the panel shows ``expected`` (e.g. radius=3); return what it shows."""
    deadline = time.monotonic() + 20
    while True:
        shown = explorer_shown(driver)
        if all(shown[key] == value for key, value in expected.items()) or time.monotonic() > deadline:
            return shown
        time.sleep(0.1)


def assert_shown_equals_python(shown: dict, explorer) -> None:
    """The neighbours and the P/R point the page shows are what HammingExplorer computes."""
    import math

    found = explorer.neighbours(shown["query"], shown["modality"], shown["n_bits"])
    report = explorer.radius_report(shown["radius"], shown["query"], shown["modality"], shown["n_bits"])
    assert shown["rows"] == found.indices.tolist(), shown
    assert shown["distances"] == found.distances.tolist(), shown
    assert shown["n_inside"] == report.n_inside, shown
    for key, value in (("precision", report.precision), ("recall", report.recall)):
        if math.isnan(value):
            assert math.isnan(shown[key]), (key, shown)
        else:
            assert shown[key] == pytest.approx(value), (key, shown)


def exercise_explorer(driver, explorer, other_query: int) -> list[dict]:
    """Work every control (query, modality, K, radius); after each, the page must show a new state that
    equals Python's. Returns the states seen."""
    seen = [wait_until_shown(driver)]
    assert_shown_equals_python(seen[-1], explorer)
    start = seen[0]
    bits = [b for b in explorer.bit_lengths if b != start["n_bits"]]
    steps = [
        ("query", lambda: choose_query(driver, other_query), {"query": other_query}),
        ("modality", lambda: click_button(driver, "PET" if start["modality"] == "mri" else "sMRI"),
         {"modality": "pet" if start["modality"] == "mri" else "mri"}),
        ("K", lambda: click_button(driver, f"K = {bits[-1]}"), {"n_bits": bits[-1]}),
    ]
    for name, act, expected in steps:
        act()
        seen.append(wait_until_shown(driver, **expected))
        assert all(seen[-1][k] == v for k, v in expected.items()), (name, seen[-1])
        assert_shown_equals_python(seen[-1], explorer)
    radius = seen[-1]["radius"]
    target = min(radius + 2, seen[-1]["n_bits"]) if radius + 2 <= seen[-1]["n_bits"] else radius - 2
    move_radius(driver, target - radius)
    seen.append(wait_until_shown(driver, radius=target))
    assert seen[-1]["radius"] == target, seen[-1]
    assert_shown_equals_python(seen[-1], explorer)
    return seen
