/*
 * The kernel-free half of Chapter 8's explorer: everything the browser
 * computes, in one file (HammingExplorer.browser_view embeds it in the page;
 * tests/test_explorer_js.py runs its core under node against the Python
 * functions).
 *
 * Data (from HammingExplorer.browser_data, precomputed in Python):
 *   n, k, labels[n], ids[n], class_names, bits[],
 *   codes[K][modality]: base64 of pack_codes(codes), (n, ceil(K/8)) bytes,
 *       entry j of a code = bit 7 - (j mod 8) of byte j // 8 (+1 -> 1),
 *   map[K]: {x[2n], y[2n]} (rows 0..n-1 the sMRI scans, n..2n-1 the PET scans),
 *   thumbs[modality][n]: data: URIs, state: {query, modality, n_bits, radius}.
 *
 * Core (pure functions, no DOM):
 *   hammingDistances  XOR + popcount of packed codes
 *   topK              the k nearest, ties by database order
 *   histograms        per-distance counts, all and relevant
 *   prByRadius        precision and recall of hash lookup at r = 0..K
 *   explore           all of the above for one (query, modality, K, radius)
 * View (Bokeh models, browser only):
 *   update            recompute and redraw after a control changed
 */
(function (root, factory) {
  "use strict";
  var api = factory();
  if (typeof module === "object" && module.exports) {
    module.exports = api;
  } else {
    root.NeuroHashExplorer = api;
  }
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";

  var MODALITIES = ["mri", "pet"];
  var MODALITY_NAMES = { mri: "sMRI", pet: "PET" };

  /* popcount of every byte value */
  var POPCOUNT = new Uint8Array(256);
  for (var v = 1; v < 256; v++) POPCOUNT[v] = (v & 1) + POPCOUNT[v >> 1];

  function decodeBase64(text) {
    var binary = atob(text);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  }

  function bytesPerCode(nBits) {
    return Math.ceil(nBits / 8);
  }

  /* Hamming distances from code `query` (row of `queryBytes`) to the codes
     `rows` of `dbBytes`; both packed with nBytes bytes per code. */
  function hammingDistances(queryBytes, query, dbBytes, rows, nBytes) {
    var out = new Int32Array(rows.length);
    var q = query * nBytes;
    for (var i = 0; i < rows.length; i++) {
      var d = 0, r = rows[i] * nBytes;
      for (var b = 0; b < nBytes; b++) d += POPCOUNT[(queryBytes[q + b] ^ dbBytes[r + b]) & 255];
      out[i] = d;
    }
    return out;
  }

  /* Positions (into `distances`) of the k smallest distances, sorted by
     distance, ties by position (database order). */
  function topK(distances, k) {
    var order = [];
    for (var i = 0; i < distances.length; i++) order.push(i);
    order.sort(function (a, b) { return distances[a] - distances[b] || a - b; });
    return order.slice(0, Math.min(k, order.length));
  }

  /* total[d], relevant[d]: database codes at distance d = 0..nBits. */
  function histograms(distances, relevant, nBits) {
    var total = new Array(nBits + 1).fill(0), rel = new Array(nBits + 1).fill(0);
    for (var i = 0; i < distances.length; i++) {
      total[distances[i]] += 1;
      if (relevant[i]) rel[distances[i]] += 1;
    }
    return { total: total, relevant: rel };
  }

  /* Precision (NaN where the ball is empty) and recall (NaN without relevant
     items) of hash lookup within radius r = 0..nBits: DESIGN.md section 4. */
  function prByRadius(hist) {
    var nRelevant = hist.relevant.reduce(function (a, b) { return a + b; }, 0);
    var precision = [], recall = [], inside = [], relevantInside = [];
    var within = 0, relWithin = 0;
    for (var r = 0; r < hist.total.length; r++) {
      within += hist.total[r];
      relWithin += hist.relevant[r];
      inside.push(within);
      relevantInside.push(relWithin);
      precision.push(within > 0 ? relWithin / within : NaN);
      recall.push(nRelevant > 0 ? relWithin / nRelevant : NaN);
    }
    return { precision: precision, recall: recall, inside: inside, relevantInside: relevantInside,
             nRelevant: nRelevant };
  }

  var decoded = typeof WeakMap !== "undefined" ? new WeakMap() : null;

  function codesOf(data, nBits, modality) {
    var cache = decoded && decoded.get(data);
    if (!cache) { cache = {}; if (decoded) decoded.set(data, cache); }
    var key = nBits + "/" + modality;
    if (!cache[key]) cache[key] = decodeBase64(data.codes[String(nBits)][modality]);
    return cache[key];
  }

  /* Everything the views show for one state {query, modality, n_bits, radius}.
     The database is the other modality's scan of every other subject, in
     subject order (HammingExplorer._database). */
  function explore(data, state) {
    var nBits = Number(state.n_bits), query = Number(state.query), modality = state.modality;
    var radius = Math.max(0, Math.min(Number(state.radius), nBits));
    var other = modality === "mri" ? "pet" : "mri";
    var rows = [];
    for (var i = 0; i < data.n; i++) if (i !== query) rows.push(i);
    var nBytes = bytesPerCode(nBits);
    var distances = hammingDistances(codesOf(data, nBits, modality), query, codesOf(data, nBits, other),
                                     rows, nBytes);
    var label = data.labels[query];
    var relevant = rows.map(function (row) { return data.labels[row] === label; });
    var best = topK(distances, data.k);
    var hist = histograms(distances, relevant, nBits);
    var pr = prByRadius(hist);
    return {
      query: query, modality: modality, other: other, n_bits: nBits, radius: radius,
      rows: rows, distances: Array.from(distances), relevant: relevant,
      neighbours: {
        rows: best.map(function (i) { return rows[i]; }),
        distances: best.map(function (i) { return distances[i]; }),
        relevant: best.map(function (i) { return relevant[i]; })
      },
      histogram: hist,
      precision_curve: pr.precision, recall_curve: pr.recall,
      n_inside: pr.inside[radius], n_relevant_inside: pr.relevantInside[radius], n_relevant: pr.nRelevant,
      precision: pr.precision[radius], recall: pr.recall[radius]
    };
  }

  /* ------------------------------------------------------------------ */
  /* View: redraw the Bokeh models of HammingExplorer.browser_view.      */
  /* ------------------------------------------------------------------ */
  function fmt(x) {
    return isFinite(x) ? x.toFixed(2) : "n/a";
  }

  function escapeHtml(text) {
    return String(text).replace(/[&<>"]/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c];
    });
  }

  function neighboursHtml(data, result) {
    var names = data.class_names, q = result.query;
    var cell = function (row, modality, caption, colour) {
      return '<figure style="margin:0 6px 0 0;text-align:center;width:92px">' +
        '<img src="' + data.thumbs[modality][row] + '" width="84" height="84" ' +
        'style="image-rendering:pixelated;border:3px solid ' + colour + '" alt="' +
        escapeHtml(data.ids[row] + " " + MODALITY_NAMES[modality]) + '"/>' +
        '<figcaption style="font-size:11px;line-height:1.25;color:' + colour + '">' + caption +
        '</figcaption></figure>';
    };
    var cells = [cell(q, result.modality, "<b>query</b> " + MODALITY_NAMES[result.modality] + "<br>" +
                      escapeHtml(data.ids[q]) + ", " + names[data.labels[q]], "#000")];
    var nb = result.neighbours;
    for (var i = 0; i < nb.rows.length; i++) {
      var row = nb.rows[i], colour = nb.relevant[i] ? "#2ca02c" : "#d62728";
      cells.push(cell(row, result.other, "#" + (i + 1) + " " + escapeHtml(data.ids[row]) + ", " +
                      names[data.labels[row]] + "<br>d<sub>H</sub> = " + nb.distances[i] + " bits " +
                      (nb.relevant[i] ? "&#10003;" : "&#10007;"), colour));
    }
    var dk = nb.distances[nb.distances.length - 1], closer = 0, tied = 0;
    for (var j = 0; j < result.distances.length; j++) {
      if (result.distances[j] < dk) closer += 1; else if (result.distances[j] === dk) tied += 1;
    }
    var attributes = ' data-nh="neighbours" data-query="' + q + '" data-modality="' + result.modality +
      '" data-bits="' + result.n_bits + '" data-radius="' + result.radius + '" data-rows="' + nb.rows.join(",") +
      '" data-distances="' + nb.distances.join(",") + '" data-precision="' + result.precision +
      '" data-recall="' + result.recall + '" data-inside="' + result.n_inside + '"';
    return '<div' + attributes + ' style="font-family:sans-serif">' +
      '<div style="font-size:13px;margin-bottom:4px">Top-' + nb.rows.length + " " + MODALITY_NAMES[result.other] +
      " scans for the " + MODALITY_NAMES[result.modality] + " of " + escapeHtml(data.ids[q]) + " (" +
      names[data.labels[q]] + "), K = " + result.n_bits + ": " + closer + " closer than d<sub>H</sub> = " + dk +
      ", " + tied + " at d<sub>H</sub> = " + dk + " (ties in subject order). Within r = " + result.radius + ": " +
      result.n_inside + " scans, " + result.n_relevant_inside + " relevant; P = " + fmt(result.precision) +
      ", R = " + fmt(result.recall) + ".</div>" +
      '<div style="display:flex;flex-wrap:wrap">' + cells.join("") + "</div></div>";
  }

  /* models: {query, modality, bits, radius (widgets), neighbours (Div),
     hist, pr_curve, pr_point, map_points, map_query, map_links (sources),
     edge (Span), hist_title, pr_title (Titles)} */
  function update(data, models) {
    var bits = data.bits[models.bits.active];
    var radius = models.radius;
    if (radius.end !== bits) radius.end = bits;
    if (radius.value > bits) radius.value = bits;
    var state = { query: Number(models.query.value), modality: MODALITIES[models.modality.active],
                  n_bits: bits, radius: radius.value };
    var result = explore(data, state);

    models.neighbours.text = neighboursHtml(data, result);

    var distance = [], relevantCount = [], otherCount = [];
    for (var d = 0; d <= bits; d++) {
      distance.push(d);
      relevantCount.push(result.histogram.relevant[d]);
      otherCount.push(result.histogram.total[d] - result.histogram.relevant[d]);
    }
    models.hist.data = { distance: distance, relevant: relevantCount, other: otherCount };
    models.edge.location = result.radius + 0.5;
    models.hist_title.text = result.n_inside + " scans within r = " + result.radius + " (" +
      result.n_relevant_inside + " relevant)";

    var rec = [], prec = [], rad = [];
    for (var r = 0; r <= bits; r++) {
      if (isFinite(result.precision_curve[r])) {
        rec.push(result.recall_curve[r]); prec.push(result.precision_curve[r]); rad.push(r);
      }
    }
    models.pr_curve.data = { recall: rec, precision: prec, radius: rad };
    models.pr_point.data = isFinite(result.precision) ?
      { recall: [result.recall], precision: [result.precision], radius: [result.radius] } :
      { recall: [], precision: [], radius: [] };
    models.pr_title.text = "r = " + result.radius + ": P = " + fmt(result.precision) + ", R = " + fmt(result.recall);

    var coords = data.map[String(bits)], n = data.n;
    var qi = result.query + (result.modality === "mri" ? 0 : n), offset = result.other === "mri" ? 0 : n;
    models.map_points.data = Object.assign({}, models.map_points.data, { x: coords.x, y: coords.y });
    models.map_query.data = { x: [coords.x[qi]], y: [coords.y[qi]] };
    var xs = [], ys = [];
    result.neighbours.rows.forEach(function (row) {
      xs.push([coords.x[qi], coords.x[row + offset]]);
      ys.push([coords.y[qi], coords.y[row + offset]]);
    });
    models.map_links.data = { xs: xs, ys: ys };
    if (typeof window !== "undefined") window.nhLastView = result;
    return result;
  }

  return {
    MODALITIES: MODALITIES,
    decodeBase64: decodeBase64,
    bytesPerCode: bytesPerCode,
    hammingDistances: hammingDistances,
    topK: topK,
    histograms: histograms,
    prByRadius: prByRadius,
    explore: explore,
    neighboursHtml: neighboursHtml,
    update: update
  };
});
