// numbacnn explore RUN.nctrace: looks up what the tracer recorded (NC_DATA, from numbacnn.trace.load).
"use strict";
(function () {
  const D = NC_DATA;
  const app = NC.$("app");
  const nProbe = D.probe && D.at.length && D.at[0].layers[D.layers[0].name].y ? D.at[0].layers[D.layers[0].name].y_shape[0] : 0;
  app.innerHTML =
    '<div class="info">' + NC.esc(D.model.split("\n").join(" ")) + "</div>" +
    '<div class="info">' + Object.keys(D.hyper).filter((k) => k !== "probe_labels").map((k) => k + "=" +
      NC.esc(JSON.stringify(D.hyper[k]))).join(", ") + (D.complete ? "" : ' <span class="error">(incomplete run)</span>') +
    "</div>" + NC.scrubber("scrub", "recorded step") + ' <span class="info" id="scalars"></span>' +
    '<div id="curves"></div><div class="controls">' +
    (nProbe ? NC.select("example", "probe example", Array.from({length: nProbe}, (_, i) => [i, i])) : "") +
    NC.select("kind", "parameters show", [["value", "value"], ["grad", "gradient"], ["momentum", "momentum buffer"],
      ["update", "update (value after − value)"]]) + "</div>" +
    '<div class="runbox"><div class="layers" id="layers"></div><div id="main"></div></div>' +
    '<div class="info" id="hover">hover a map for its value</div><p class="note">Colours: blue &lt; 0 &lt; red ' +
    "(grey for maps without negative values), each map scaled to its own largest |value|.</p><div id=\"preds\"></div>";
  let layer = D.layers.length ? D.layers[0].name : null, k = 0;
  const scrub = NC.Scrub("scrub", (v) => { k = v; draw(); });
  scrub.setMax(D.steps.length);

  // ---- decoding and drawing quantized arrays
  const cache = new Map();
  function bytes(q) {
    if (!cache.has(q)) {
      const s = atob(q.b), b = new Uint8Array(s.length);
      for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
      cache.set(q, b);
    }
    return cache.get(q);
  }
  const deq = (q, b) => q.lo + (b * (q.hi - q.lo)) / 255;  // the stored level back to a value (8-bit)
  // for drawing: the level nearest to 0 is drawn as 0 (an all-zero map stays white, not a full-scale colour)
  const shown = (q, b) => { const v = deq(q, b); return Math.abs(v) <= (q.hi - q.lo) / 510 ? 0 : v; };
  NC.decoded = (q) => Array.from(bytes(q), (b) => deq(q, b));  // for tests
  let canvasId = 0;
  const pending = [];
  // a canvas of an (h, w) slice of q starting at offset; drawn after the HTML is in place
  function canvas(q, offset, h, w, title, maxPx) {
    const id = "cv" + canvasId++;
    const scale = Math.max(1, Math.min(8, Math.floor((maxPx || 112) / Math.max(h, w))));
    pending.push([id, q, offset, h, w]);
    return '<figure class="map"><canvas id="' + id + '" width="' + w + '" height="' + h + '" style="width:' +
      w * scale + "px;height:" + h * scale + 'px" data-off="' + offset + '"></canvas><figcaption>' + title +
      "</figcaption></figure>";
  }
  function paint() {
    for (const [id, q, off, h, w] of pending.splice(0)) {
      const cv = NC.$(id), ctx = cv.getContext("2d"), img = ctx.createImageData(w, h), b = bytes(q);
      // colours: each map scaled to its own largest |value| (a layer's channels differ by orders of magnitude)
      const signed = q.lo < 0;
      let m = 0;
      for (let i = 0; i < h * w; i++) m = Math.max(m, Math.abs(shown(q, b[off + i])));
      m = m || 1;
      for (let i = 0; i < h * w; i++) {
        const v = shown(q, b[off + i]);
        const hex = signed ? NC.signedColor(v, m) : NC.grayColor(v, m);
        img.data[4 * i] = parseInt(hex.substr(1, 2), 16); img.data[4 * i + 1] = parseInt(hex.substr(3, 2), 16);
        img.data[4 * i + 2] = parseInt(hex.substr(5, 2), 16); img.data[4 * i + 3] = 255;
      }
      ctx.putImageData(img, 0, 0);
      cv.onmousemove = (e) => {
        const r = cv.getBoundingClientRect();
        const x = Math.floor(((e.clientX - r.left) / r.width) * w), y = Math.floor(((e.clientY - r.top) / r.height) * h);
        NC.$("hover").textContent = "[" + y + ", " + x + "] ≈ " + NC.fmt(deq(q, b[off + y * w + x]), 4) +
          " (8-bit level " + b[off + y * w + x] + " of 255 between " + NC.fmt(q.lo, 4) + " and " + NC.fmt(q.hi, 4) + ")";
      };
    }
  }
  const stats = (q) => (q.none ? "none at this step" : 'min <span class="num" data-v="' + q.lo + '">' + NC.fmt(q.lo, 4) +
    '</span>, max <span class="num" data-v="' + q.hi + '">' + NC.fmt(q.hi, 4) + '</span>, ‖·‖₂ <span class="num" data-v="' +
    q.n + '">' + NC.fmt(q.n, 4) + "</span>");

  // every map of example e of a recorded tensor (shape [N, ...])
  function maps(q, shape, e, label) {
    if (!q || q.none) return "";
    const per = shape.slice(1).reduce((a, b) => a * b, 1), off = e * per;
    let html = '<div class="panel"><h3>' + label + ' <span class="note">' + stats(q) + " (over all examples)</span></h3>";
    if (shape.length === 4) {
      for (let c = 0; c < shape[1]; c++) html += canvas(q, off + c * shape[2] * shape[3], shape[2], shape[3], "channel " + c);
    } else if (per <= 24) {  // a short vector: its values (8-bit), named by class for the last layer's outputs
      const b = bytes(q), names = D.classes && per === D.classes.length && label.indexOf("output") === 0 ? D.classes : null;
      html += NC.grid({name: "vec", title: "", rows: 1, cols: per, value: (i, j) => deq(q, b[off + j]), digits: 3,
        colLabels: names || Array.from({length: per}, (_, j) => j), color: NC.scheme([[q.lo, q.hi]], true)});
    } else {
      html += canvas(q, off, 1, per, per + " values", 600);
    }
    return html + "</div>";
  }
  function paramMap(p, q) {
    const s = p.shape;
    let html = '<div class="panel"><h3>' + p.name + " " + s.join("×") + ' <span class="note">' + stats(q) + "</span></h3>";
    if (q.none) return html + "</div>";
    if (s.length === 4) {
      for (let o = 0; o < s[0]; o++) for (let c = 0; c < s[1]; c++) {
        html += canvas(q, (o * s[1] + c) * s[2] * s[3], s[2], s[3], o + "," + c, 40);
      }
    } else if (s.length === 2) html += canvas(q, 0, s[0], s[1], "rows: outputs, columns: inputs", 480);
    else html += canvas(q, 0, 1, s.reduce((a, b) => a * b, 1), "", 480);
    return html + "</div>";
  }

  function curves() {
    const sc = D.scalars, W = 540, H = 130, L = 40;
    if (!sc.step.length) return '<p class="note">no loss or accuracy was logged</p>';
    const s0 = sc.step[0], s1 = Math.max(sc.step[sc.step.length - 1], s0 + 1);
    const plot = (vals, name, color) => {
      let lo = Infinity, hi = -Infinity;
      for (const v of vals) if (Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
      if (!(hi > lo)) { hi = lo + 1; }
      const x = (s) => L + ((s - s0) / (s1 - s0)) * (W - L - 8), y = (v) => 8 + (1 - (v - lo) / (hi - lo)) * (H - 28);
      const pts = [];
      sc.step.forEach((s, i) => { if (Number.isFinite(vals[i])) pts.push(x(s).toFixed(1) + "," + y(vals[i]).toFixed(1)); });
      return '<svg width="' + W + '" height="' + H + '"><polyline points="' + pts.join(" ") + '" fill="none" stroke="' +
        color + '" stroke-width="1.2"/><line x1="' + x(D.steps[k]) + '" y1="4" x2="' + x(D.steps[k]) + '" y2="' +
        (H - 18) + '" stroke="#ff8c00" stroke-width="2"/><text x="' + L + '" y="' + (H - 4) + '" font-size="11">' +
        name + " per step (" + NC.fmt(lo, 3) + " … " + NC.fmt(hi, 3) + ")</text></svg>";
    };
    return plot(sc.loss, "training loss", "#1f77b4") + plot(sc.acc, "training accuracy", "#2ca02c");
  }

  const draw = NC.timed(function () {
    const at = D.at[k], step = D.steps[k], e = nProbe ? Number(NC.$("example").value) : 0;
    const i = D.scalars.step.indexOf(step);
    NC.$("scrub-text").textContent = "step " + step + " (" + (k + 1) + " of " + D.steps.length + " on this page)";
    NC.$("scalars").innerHTML = i < 0 ? "" : 'loss <span id="loss" class="num" data-v="' + D.scalars.loss[i] + '">' +
      NC.fmt(D.scalars.loss[i], 4) + '</span>, accuracy <span id="acc" class="num" data-v="' + D.scalars.acc[i] + '">' +
      NC.fmt(D.scalars.acc[i], 4) + "</span> (this step's batch)";
    NC.$("curves").innerHTML = curves();
    NC.$("layers").innerHTML = D.layers.map((l) => '<button class="layer' + (l.name === layer ? " sel" : "") +
      '" data-layer="' + l.name + '">' + l.name + " " + l.type + "</button>").join("");
    const L = at.layers[layer] || {};
    let html = "";
    if (L.x) html += maps(L.x, L.x_shape, e, "input: probe example " + e);
    html += maps(L.y, L.y_shape, e, "output: probe example " + e) ||
      maps(L.by, L.by_shape, 0, "output: batch example 0 (no probe recorded)");
    html += maps(L.gy, L.gy_shape, 0, "gradient arriving at the output: batch example 0 (the probe has no backward pass)");
    const kind = NC.$("kind").value;
    for (const p of D.params) if (p.layer === layer) html += paramMap(p, at.params[p.name][kind]);
    NC.$("main").innerHTML = html || '<p class="note">nothing recorded for this layer at this step</p>';
    if (at.pred) {
      const lab = D.labels || [];
      NC.$("preds").innerHTML = "<h3>the probe's predictions at step " + step + "</h3>" + at.pred.map((c, j) =>
        '<span class="pred" data-j="' + j + '">example ' + j + ": predicted <b>" + NC.esc(D.classes[c]) + "</b>" +
        (lab[j] !== undefined ? ", true " + NC.esc(D.classes[lab[j]]) + (lab[j] === c ? " ✓" : " ✗") : "") +
        "</span>").join("");
    }
    paint();
  });

  NC.$("layers").addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-layer]");
    if (b) { layer = b.dataset.layer; draw(); }
  });
  NC.onChange(["kind"].concat(nProbe ? ["example"] : []), draw);
  draw();
})();
