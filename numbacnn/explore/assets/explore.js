// numbacnn explore: what every page shares. Hand-written, no library, nothing fetched.
// The page looks numbers up in NC_DATA (computed by numbacnn's kernels when the page was written); this file
// only formats, colours and lays them out.
"use strict";
const NC = {};

NC.$ = (id) => document.getElementById(id);
NC.esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));

// numbacnn.viz.style.fmt: integers without a decimal point, else at most `digits` decimals (scientific when that
// would print 0 or the number is >= 1000)
NC.fmt = function (v, digits) {
  if (digits === undefined) digits = 3;
  if (Number.isNaN(v)) return "nan";
  if (!Number.isFinite(v)) return v > 0 ? "inf" : "-inf";
  if (Math.abs(v - Math.round(v)) < 1e-9 && Math.abs(v) < 1e5) return String(Math.round(v) || 0);
  if (Math.abs(v) >= 1000 || Number(Math.abs(v).toFixed(digits)) === 0) {
    return v.toExponential(Math.max(digits - 1, 1)).replace(/e([+-])(\d)$/, "e$10$2");
  }
  let s = v.toFixed(digits);
  if (s.indexOf(".") >= 0) s = s.replace(/0+$/, "").replace(/\.$/, "");
  return s === "-0" ? "0" : s;
};
NC.par = (v) => (v < 0 ? "(" + NC.fmt(v) + ")" : NC.fmt(v));
NC.vec = (a) => "(" + Array.from(a, (v) => NC.fmt(v)).join(", ") + ")";

// colours of numbacnn.viz.style: signed values on RdBu_r centred at 0, non-negative images on grey
NC.absmax = function (arrays) {
  let m = 0;
  for (const a of arrays) for (const v of a) if (Number.isFinite(v) && Math.abs(v) > m) m = Math.abs(v);
  return m > 0 ? m : 1;
};
NC.signedColor = function (v, lim) {
  if (!Number.isFinite(v)) return "#ffffff";
  const t = Math.max(0, Math.min(255, Math.round((v / lim + 1) * 127.5)));
  return NC_STYLE.signed[t];
};
NC.grayColor = function (v, vmax) {
  const t = Math.max(0, Math.min(255, Math.round((v / vmax) * 255)));
  return NC_STYLE.gray[Number.isFinite(t) ? t : 0];
};
NC.textOn = function (hex) {
  const r = parseInt(hex.substr(1, 2), 16), g = parseInt(hex.substr(3, 2), 16), b = parseInt(hex.substr(5, 2), 16);
  return 0.299 * r + 0.587 * g + 0.114 * b > 127.5 ? "#111111" : "#ffffff";
};
// a colour scheme for a set of arrays: grey when none is negative, else signed
NC.scheme = function (arrays, forceSigned) {
  let lo = 0;
  for (const a of arrays) for (const v of a) if (v < lo) lo = v;
  const m = NC.absmax(arrays);
  return (lo < 0 || forceSigned) ? (v) => NC.signedColor(v, m) : (v) => NC.grayColor(v, m);
};

// A grid of numbers as a table. spec: {name, title, rows, cols, rowLabels, colLabels, value(i, j) -> number or
// null (a padding cell), color(v) -> hex, mark(i, j) -> "" | class names}. Cells carry data-g, data-i, data-j
// and data-v (the exact value) so hover handlers and tests can read them.
NC.grid = function (spec) {
  const out = ['<table class="grid" data-g="' + spec.name + '"><caption>' + spec.title + "</caption>"];
  if (spec.colLabels) {
    out.push("<tr><th></th>");
    for (let j = 0; j < spec.cols; j++) out.push("<th>" + spec.colLabels[j] + "</th>");
    out.push("</tr>");
  }
  for (let i = 0; i < spec.rows; i++) {
    out.push("<tr>");
    if (spec.colLabels) out.push("<th>" + (spec.rowLabels ? spec.rowLabels[i] : i) + "</th>");
    for (let j = 0; j < spec.cols; j++) {
      const v = spec.value(i, j);
      const mark = spec.mark ? spec.mark(i, j) : "";
      const id = ' data-g="' + spec.name + '" data-i="' + i + '" data-j="' + j + '"';
      if (v === null) {
        out.push('<td class="pad ' + mark + '"' + id + ' title="padding">' + (spec.padText || "0") + "</td>");
      } else {
        const bg = spec.color(v);
        out.push('<td class="' + mark + '"' + id + ' data-v="' + v + '" title="' + v + '" style="background:' + bg + ";color:" +
                 NC.textOn(bg) + '">' + NC.fmt(v, spec.digits || 2) + "</td>");
      }
    }
    out.push("</tr>");
  }
  out.push("</table>");
  return out.join("");
};

// Controls. select(id, label, options [[value, text]...]), range(id, label, values), check(id, label)
NC.select = function (id, label, options) {
  return '<label class="ctl">' + label + ' <select id="' + id + '">' +
    options.map((o) => '<option value="' + NC.esc(o[0]) + '">' + NC.esc(o[1]) + "</option>").join("") +
    "</select></label>";
};
NC.range = function (id, label, values) {
  return '<label class="ctl">' + label + ' <input type="range" id="' + id + '" min="0" max="' + (values.length - 1) +
    '" step="1" value="0" data-values="' + values.join(",") + '"><output id="' + id + '-out"></output></label>';
};
NC.check = (id, label) => '<label class="ctl"><input type="checkbox" id="' + id + '"> ' + label + "</label>";
NC.rangeValue = function (id) {
  const el = NC.$(id);
  const v = el.dataset.values.split(",")[Number(el.value)];
  NC.$(id + "-out").textContent = v;
  return v;
};
NC.setRange = function (id, value) {
  const el = NC.$(id);
  const i = el.dataset.values.split(",").indexOf(String(value));
  el.value = String(Math.max(i, 0));
};
// call fn whenever any of the controls ids changes
NC.onChange = function (ids, fn) {
  for (const id of ids) {
    NC.$(id).addEventListener("input", fn);
    NC.$(id).addEventListener("change", fn);
  }
};

// A scrubber with play/pause: NC.scrubber(id, label) -> HTML; NC.Scrub(id, onMove) wires it
NC.scrubber = (id, label) =>
  '<div class="scrub"><button id="' + id + '-play" title="play / pause (space)">▶</button> ' + label +
  ' <input type="range" id="' + id + '" min="0" max="0" value="0"> <span id="' + id + '-text"></span></div>';
NC.Scrub = function (id, onMove) {
  const el = NC.$(id), btn = NC.$(id + "-play");
  let timer = null;
  const self = {
    get value() { return Number(el.value); },
    set(v) { el.value = String(Math.max(0, Math.min(Number(el.max), v))); onMove(Number(el.value)); },
    setMax(n) { el.max = String(Math.max(0, n - 1)); if (Number(el.value) > n - 1) el.value = String(n - 1); },
    step(d) { self.set(Number(el.value) + d); },
    stop() { if (timer) { clearInterval(timer); timer = null; btn.textContent = "▶"; } },
    toggle() {
      if (timer) { self.stop(); return; }
      if (Number(el.value) >= Number(el.max)) el.value = "0";
      btn.textContent = "❚❚";
      timer = setInterval(() => {
        if (Number(el.value) >= Number(el.max)) self.stop(); else self.step(1);
      }, 450);
    },
  };
  el.addEventListener("input", () => { self.stop(); onMove(Number(el.value)); });
  btn.addEventListener("click", () => self.toggle());
  document.addEventListener("keydown", (e) => {
    if (e.target && e.target.tagName === "SELECT") return;
    if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
      if (e.target && e.target.type === "range" && e.target !== el) return;  // that slider moves itself
      e.preventDefault();
      self.stop();
      self.step(e.key === "ArrowRight" ? 1 : -1);
    } else if (e.key === " " && !(e.target && e.target.tagName === "BUTTON")) {
      e.preventDefault();
      self.toggle();
    }
  });
  return self;
};

// hover / click on grid cells: handler(gridName, i, j)
NC.onCell = function (container, handler) {
  const pick = (e) => {
    const td = e.target.closest ? e.target.closest("td[data-g]") : null;
    if (td) handler(td.dataset.g, Number(td.dataset.i), Number(td.dataset.j));
  };
  container.addEventListener("mouseover", pick);
  container.addEventListener("click", pick);
};

// time of the last redraw (ms), for benchmarks/explore_latency.py
NC.timed = function (fn) {
  return function () {
    const t0 = performance.now();
    fn.apply(null, arguments);
    document.body.dataset.redrawMs = String(performance.now() - t0);
    document.body.dataset.redraws = String(Number(document.body.dataset.redraws || 0) + 1);
  };
};
