"""Keep the built pages free of console errors that the theme stack causes.

1. Jupyter Book 1.x sets sphinx-thebe up so that its inline configuration
   script (``const THEBE_JS_URL = ...``) is added to every page twice; the
   second copy throws "Identifier 'THEBE_JS_URL' has already been declared".
   Repeated scripts are dropped from each page, keeping the first of each.
2. The widget manager that draws saved widget state (book/widgets/,
   @jupyter-widgets/html-manager 1.x) typesets widget labels with MathJax 2's
   ``MathJax.Hub.Queue``, which MathJax 3 (book/mathjax/) does not have: on a
   page with both, every label threw "Cannot read properties of undefined
   (reading 'Queue')". A page that loads MathJax gets a small ``Hub.Queue``
   that hands the element to MathJax 3's ``typesetPromise``.

tests/test_browser_book.py checks that no page logs a console error.
"""

from __future__ import annotations

HUB_SHIM = """(function () {
  var hub = {Queue: function (job) {
    var mj = window.MathJax, element = Array.isArray(job) ? job[2] : undefined;
    if (!mj || !mj.typesetPromise) return;
    var ready = (mj.startup && mj.startup.promise) || Promise.resolve();
    ready.then(function () { return mj.typesetPromise(element ? [element] : undefined); })
         .catch(function (error) { console.warn("MathJax:", error); });
  }};
  var config = window.MathJax = window.MathJax || {};
  config.Hub = hub;
  config.startup = config.startup || {};
  var ready = config.startup.ready;
  config.startup.ready = function () {
    if (ready) { ready(); } else { MathJax.startup.defaultReady(); }
    MathJax.Hub = hub;
  };
})();"""


def _key(script) -> tuple:
    # an inline script is added once with filename None and once with ""
    filename = getattr(script, "filename", script) or ""
    attributes = getattr(script, "attributes", {}) or {}
    return str(filename), tuple(sorted((str(k), str(v)) for k, v in attributes.items()))


def drop_repeated_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for script in scripts:
        key = _key(script)
        if key not in seen:
            seen.add(key)
            kept.append(script)
    scripts[:] = kept


def add_mathjax2_hub(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files") or []
    if any(str(getattr(s, "filename", "") or "").split("?")[0].endswith(app.config.mathjax_path.split("/")[-1])
           for s in scripts):
        # after the page's MathJax configuration (priority 500), before MathJax runs (it is deferred)
        app.add_js_file(None, body=HUB_SHIM, priority=501)


def setup(app):
    # late, after the extensions that add scripts to a page (sphinx.ext.mathjax among them)
    app.connect("html-page-context", add_mathjax2_hub, priority=850)
    app.connect("html-page-context", drop_repeated_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
