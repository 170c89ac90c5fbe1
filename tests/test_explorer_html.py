"""Chapter 8's explorer renders in the built HTML book without internet.

The widget manager and require.js are shipped with the book (book/widgets/);
the built explorer page must hold the widgets' saved state and load every
widget script from inside the book, never from a CDN.
"""

from __future__ import annotations

import posixpath
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml


ROOT = Path(__file__).resolve().parents[1]
PAGE = Path("notebooks") / "08_hamming_space_explorer.html"
WIDGET_SCRIPT = re.compile(r"require|embed|widget|html-manager", re.IGNORECASE)


class _Scripts(HTMLParser):
    """Collects every <script>'s attributes."""

    def __init__(self):
        super().__init__()
        self.scripts: list[dict] = []

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self.scripts.append(dict(attrs))


def scripts_of(html: str) -> list[dict]:
    parser = _Scripts()
    parser.feed(html)
    return parser.scripts


def is_external(src: str) -> bool:
    return "://" in src or src.startswith("//")


def config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text())


def test_the_widget_scripts_the_config_names_are_shipped_with_the_book():
    sphinx = config()["sphinx"]["config"]
    scripts = sphinx["nb_ipywidgets_js"]
    assert scripts, "nb_ipywidgets_js names no script"
    extra = [ROOT / path for path in sphinx["html_extra_path"]]
    for src in scripts:
        assert not is_external(src), f"{src} is loaded from outside the book"
        # Sphinx serves a relative script path from _static/; html_extra_path
        # copies each folder's contents to the site's root.
        in_site = posixpath.normpath(posixpath.join("_static", src))
        assert not in_site.startswith(".."), f"{src} points outside the site"
        assert not in_site.startswith("_static/"), f"{src} is served from _static/"
        assert any((folder / in_site).is_file() for folder in extra), f"{src} ({in_site}) is not under {extra}"


def test_external_scripts_are_recognised():
    page = ('<script src="https://cdn.jsdelivr.net/npm/@jupyter-widgets/html-manager@1/dist/embed-amd.js"></script>'
            '<script src="../widgets/require.js"></script><script type="x">{}</script>')
    srcs = [s["src"] for s in scripts_of(page) if "src" in s]
    assert [is_external(s) for s in srcs] == [True, False]


@pytest.mark.slow
def test_explorer_page_holds_widget_state_and_loads_widgets_from_the_book(built_book):
    page_path = built_book / PAGE
    html = page_path.read_text()
    scripts = scripts_of(html)
    states = [s for s in scripts if s.get("type") == "application/vnd.jupyter.widget-state+json"]
    assert states, "the explorer page holds no widget state"
    assert "application/vnd.jupyter.widget-view+json" in html, "the explorer page shows no widget view"
    widget_srcs = [s["src"] for s in scripts if "src" in s and WIDGET_SCRIPT.search(s["src"])]
    assert any("require" in src for src in widget_srcs) and any("embed-amd" in src for src in widget_srcs), widget_srcs
    for src in widget_srcs:
        assert not is_external(src), f"the explorer page loads {src} from outside the book"
        target = (page_path.parent / src.split("?")[0]).resolve()
        assert target.is_file() and built_book.resolve() in target.parents, f"{src} does not resolve inside the book"
