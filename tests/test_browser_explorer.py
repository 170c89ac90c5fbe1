"""Chapter 8's kernel-free explorer answers its controls in a real browser (headless Chromium).

The page is :meth:`HammingExplorer.browser_view` of a small explorer, opened
from ``file://`` with the network blocked; every control is worked as a
reader works it, and what the page shows must equal what the Python
explorer computes. (tests/test_browser_book.py does the same on the built
book's Chapter 8.)
"""

from __future__ import annotations

import base64

import numpy as np
import pytest

from browser import console_errors, exercise_explorer, start_browser
from neurohash_lite.retrieval import unpack_codes
from neurohash_lite.viz import HammingExplorer


def small_explorer(n: int = 40, size: int = 24) -> HammingExplorer:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, n)
    codes = {}
    for n_bits in (3, 16, 32):
        centres = rng.choice([-1, 1], size=(3, n_bits))
        pair = []
        for _ in range(2):
            c = centres[labels].copy()
            c[rng.random(c.shape) < 0.2] *= -1
            pair.append(c)
        codes[n_bits] = tuple(pair)
    images = {m: rng.random((n, size, size)) for m in ("mri", "pet")}
    return HammingExplorer(codes, labels, [f"sub-{i:04d}" for i in range(n)], images, k=5)


@pytest.fixture(scope="module")
def browser():
    driver = start_browser()
    yield driver
    driver.quit()


def test_explorer_answers_every_control_like_python(browser, tmp_path):
    explorer = small_explorer()
    explorer.select(query=2, modality="mri", n_bits=16, radius=4)
    page = tmp_path / "explorer.html"
    page.write_text("<!doctype html><html><head><meta charset='utf-8'><title>t</title></head><body>"
                    + explorer.browser_view().data + "</body></html>", encoding="utf-8")
    browser.get(page.as_uri())
    browser.switch_to.frame(browser.find_element("css selector", "iframe.nh-explorer"))
    seen = exercise_explorer(browser, explorer, other_query=7)
    assert seen[0]["query"] == 2 and seen[0]["n_bits"] == 16 and seen[0]["radius"] == 4
    assert len({(s["query"], s["modality"], s["n_bits"], s["radius"]) for s in seen}) == len(seen)
    assert "Top-5" in seen[-1]["text"]
    browser.switch_to.default_content()
    assert not console_errors(browser)


def test_browser_data_round_trips_the_codes():
    explorer = small_explorer()
    data = explorer.browser_data()
    for n_bits in explorer.bit_lengths:
        for m in ("mri", "pet"):
            packed = np.frombuffer(base64.b64decode(data["codes"][str(n_bits)][m]), dtype=np.uint8)
            codes = unpack_codes(packed.reshape(data["n"], -1), n_bits)
            np.testing.assert_array_equal(codes, explorer.codes[n_bits][m])
    assert all(uri.startswith("data:image/png;base64,") for uri in data["thumbs"]["pet"])
