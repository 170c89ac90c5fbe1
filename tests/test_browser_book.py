"""The built book in a real browser (headless Chromium), opened from file:// with the network blocked.

- Every page: MathJax (shipped with the book, book/mathjax/) has typeset its
  maths, no raw ``\\(``, ``\\[`` or ``$$`` is left in the text, no TeX error
  box is drawn, and the console shows no error.
- Chapter 8: the explorer that computes in the browser answers its query,
  modality, K and radius controls, and the neighbours and P/R point it shows
  equal what :class:`HammingExplorer` computes in Python from the same codes.

These tests skip, saying how to enable them, where no browser is installed;
.ci/run installs one.
"""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest

from browser import console_errors, exercise_explorer, start_browser, wait_for
from neurohash_lite.retrieval import unpack_codes
from neurohash_lite.viz import HammingExplorer

pytestmark = pytest.mark.slow

EXPLORER_PAGE = "notebooks/08_hamming_space_explorer.html"
NOT_PAGES = {"genindex.html", "search.html"}

# Wait for MathJax's first typesetting (pages without maths do not load it).
TYPESET = """
const done = arguments[arguments.length - 1];
if (!document.querySelector('script[src*="mathjax"]')) { done("no mathjax"); return; }
const wait = () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    MathJax.startup.promise.then(() => done("typeset"), (e) => done("error: " + e));
  } else { setTimeout(wait, 50); }
};
wait();
"""

# The page's text outside code, scripts and typeset maths.
PROSE_TEXT = """
const body = document.body.cloneNode(true);
body.querySelectorAll('pre, code, script, style, textarea, mjx-container, .highlight').forEach((e) => e.remove());
return body.textContent;
"""

RAW_MATH = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$\$")


@pytest.fixture(scope="module")
def browser():
    driver = start_browser()
    yield driver
    driver.quit()


def book_pages(book) -> list:
    return sorted(p for p in book.rglob("*.html") if not {"_static", "_sources"} & set(p.relative_to(book).parts)
                  and p.name not in NOT_PAGES)


def test_every_page_typesets_its_maths_offline_without_console_errors(browser, built_book):
    pages = book_pages(built_book)
    assert len(pages) >= int(__import__("os").environ.get("NH_MIN_PAGES", 10)), pages
    typeset_pages, problems = 0, []
    for page in pages:
        browser.get(page.as_uri())
        status = browser.execute_async_script(TYPESET)
        name = page.relative_to(built_book).as_posix()
        if status == "typeset":
            typeset_pages += 1
        elif status != "no mathjax":
            problems.append(f"{name}: MathJax {status}")
        text = browser.execute_script(PROSE_TEXT)
        raw = RAW_MATH.search(text)
        if raw:
            problems.append(f"{name}: raw maths left: ...{text[max(0, raw.start() - 60):raw.end() + 60]!r}...")
        tex_errors = browser.execute_script("return document.querySelectorAll('mjx-merror').length")
        if tex_errors:
            problems.append(f"{name}: {tex_errors} TeX errors drawn")
        problems += [f"{name}: console: {message}" for message in console_errors(browser)]
    assert not problems, "\n".join(problems)
    assert typeset_pages >= min(5, len(pages) // 2), "MathJax typeset too few pages"


def test_no_page_loads_a_script_from_the_network(built_book):
    external = re.compile(r"<script[^>]*\ssrc=\"(?:https?:)?//", re.IGNORECASE)
    for page in book_pages(built_book):
        found = external.search(page.read_text(encoding="utf-8"))
        assert not found, f"{page.name} loads {found.group(0)}"


def explorer_from_page(data: dict) -> HammingExplorer:
    """The Python explorer of the codes the page carries."""
    codes = {}
    for n_bits in data["bits"]:
        pair = []
        for modality in ("mri", "pet"):
            packed = np.frombuffer(base64.b64decode(data["codes"][str(n_bits)][modality]), dtype=np.uint8)
            pair.append(unpack_codes(packed.reshape(data["n"], -1), n_bits))
        codes[n_bits] = tuple(pair)
    return HammingExplorer(codes, np.array(data["labels"]), data["ids"], k=data["k"])


def test_chapter_8_explorer_answers_every_control_like_python(browser, built_book):
    page = built_book / EXPLORER_PAGE
    size_mb = page.stat().st_size / 1e6
    assert size_mb < 5, f"the explorer page weighs {size_mb:.1f} MB"
    browser.get(page.as_uri())
    frames = browser.find_elements("css selector", "iframe.nh-explorer")
    assert len(frames) == 1, "Chapter 8 shows no browser explorer"
    browser.execute_script("arguments[0].scrollIntoView()", frames[0])
    browser.switch_to.frame(frames[0])
    data = wait_for(browser, "return window.NeuroHashData || null")
    assert data, "the explorer carries no data"
    explorer = explorer_from_page(data)
    other = (data["state"]["query"] + 1) % data["n"]
    seen = exercise_explorer(browser, explorer, other_query=other)
    assert seen[0]["query"] == data["state"]["query"]
    assert len({(s["query"], s["modality"], s["n_bits"], s["radius"]) for s in seen}) == len(seen)
    browser.switch_to.default_content()
    assert not console_errors(browser)
