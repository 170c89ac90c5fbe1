"""The built book ships MathJax itself (book/mathjax/), so its maths renders with no network."""

from __future__ import annotations

import hashlib
import posixpath
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
MATHJAX = ROOT / "book" / "mathjax"


def sphinx_config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]["config"]


def test_mathjax_path_names_the_shipped_component():
    config = sphinx_config()
    path = config["mathjax_path"]
    assert "://" not in path and not path.startswith("//"), f"{path} is loaded from the network"
    in_site = posixpath.normpath(posixpath.join("_static", path))     # Sphinx serves it from _static/
    assert not in_site.startswith(("..", "_static/")), in_site
    extra = [ROOT / folder for folder in config["html_extra_path"]]
    assert any((folder / in_site).is_file() for folder in extra), f"{in_site} is not under {extra}"


def test_the_component_its_extensions_and_fonts_are_shipped_with_their_licence():
    root = MATHJAX / "html" / "mathjax"
    assert (root / "LICENSE").read_text().lstrip().startswith("Apache License")
    extensions = {p.stem for p in (root / "input" / "tex" / "extensions").glob("*.js")}
    # what autoload fetches for the macros the chapters use, and a few more
    assert {"boldsymbol", "cancel", "color", "mathtools", "braket", "bbox"} <= extensions
    fonts = list((root / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff"))
    assert len(fonts) >= 20
    assert sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) < 3e6


def test_the_readme_states_the_version_and_the_components_sha256():
    readme = (MATHJAX / "README.md").read_text()
    assert "3.2.2" in readme
    digest = hashlib.sha256((MATHJAX / "html" / "mathjax" / "tex-mml-chtml.js").read_bytes()).hexdigest()
    assert digest in readme
    assert re.search(r"`[0-9a-f]{64}`", readme)
