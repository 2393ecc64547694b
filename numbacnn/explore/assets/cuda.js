// numbacnn explore cuda: looks up what the observer saw numbacnn's CUDA conv2d kernels do (NC_DATA.runs).
"use strict";
(function () {
  const D = NC_DATA;
  const app = NC.$("app");
  const COUNTS = ["global reads", "global writes", "shared reads", "shared writes"];
  const TAB10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
                 "#17becf"];
  app.innerHTML =
    '<div class="controls">' +
    NC.select("input", "input", Object.keys(D.inputs).map((k) => [k, k])) +
    NC.select("kernel", "conv kernel", Object.keys(D.kernels).map((k) => [k, k])) +
    NC.select("cuda", "CUDA kernel", [["1", "1: one thread per output"], ["2", "2: tiled, shared memory"]]) +
    NC.select("bsize", "block", []) + "</div>" +
    '<div class="info" id="launch"></div>' + NC.scrubber("scrub", "block, phase") +
    '<div class="caption" id="caption"></div><div class="panels" id="panels"></div>' +
    '<div class="info" id="thread"></div><div class="info" id="totals"></div>' +
    '<p class="note">Colours: the block that reads or writes a cell (lighter: earlier phases, or blocks still to ' +
    "come). Hover an output cell for the thread that wrote it; its global reads of x are outlined. Arrow keys " +
    "step, space plays.</p>";

  const st = D.start;
  NC.$("input").value = st.input; NC.$("kernel").value = st.kernel; NC.$("cuda").value = st.cuda;
  let R = null, I = null, K = null, hover = null;
  const scrub = NC.Scrub("scrub", (f) => draw(f));

  function blockSizes() {
    const k = NC.$("cuda").value, sel = NC.$("bsize"), keep = sel.value;
    sel.innerHTML = D.blocks[k].map((n) => '<option value="' + n + '">' +
      (k === "1" ? n + " threads" : n + " x " + n + " threads") + "</option>").join("");
    sel.value = D.blocks[k].map(String).includes(keep) ? keep : String(D.blocks[k][D.blocks[k].length - 1]);
  }

  function select() {
    I = D.inputs[NC.$("input").value]; K = D.kernels[NC.$("kernel").value];
    R = D.runs[[NC.$("input").value, NC.$("kernel").value, NC.$("cuda").value, NC.$("bsize").value].join("|")];
    R.HO = I.h - K.kh + 1; R.WO = I.w - K.kw + 1;
    R.order = {};
    R.frames.forEach((f) => { if (!(f[0] in R.order)) R.order[f[0]] = Object.keys(R.order).length; });
    const g = R.grid, b = R.block;
    NC.$("launch").textContent = R.name + ": grid (" + g.join(", ") + ") of blocks (" + b.join(", ") + "): " +
      g[0] * g[1] * g[2] + " blocks of " + b[0] * b[1] * b[2] + " threads for " + R.HO * R.WO + " outputs";
    const other = D.runs[[NC.$("input").value, NC.$("kernel").value, NC.$("cuda").value === "1" ? "2" : "1",
                          D.blocks[NC.$("cuda").value === "1" ? "2" : "1"].slice(-1)[0]].join("|")];
    const line = (r) => r.name + ": " + COUNTS.map((c) => r.totals[c].toLocaleString("en-US") + " " + c).join(", ");
    NC.$("totals").innerHTML = "This launch: " + NC.esc(line(R)) + "; " + R.races + " races, " + R.oob +
      " out-of-bounds.<br>The other kernel on the same input: " + NC.esc(line(other)) + ".";
    hover = null;
    NC.$("thread").textContent = "";
    NC.$("thread").dataset.cell = "";
    scrub.setMax(R.frames.length);
    scrub.set(0);
  }

  const colour = (k, mix) => {
    const c = TAB10[k % 10];
    const ch = (i) => Math.round(parseInt(c.substr(1 + 2 * i, 2), 16) * (1 - mix) + 255 * mix);
    return "rgb(" + ch(0) + "," + ch(1) + "," + ch(2) + ")";
  };

  function table(name, title, rows, cols, cell) {
    const out = ['<table class="grid" data-g="' + name + '"><caption>' + title + "</caption>"];
    for (let i = 0; i < rows; i++) {
      out.push("<tr>");
      for (let j = 0; j < cols; j++) {
        const c = cell(i, j);
        if (c === null) { out.push('<td class="empty"></td>'); continue; }
        out.push('<td data-g="' + name + '" data-i="' + i + '" data-j="' + j + '"' + (c.v !== undefined ? ' data-v="' +
          c.v + '"' : "") + ' style="background:' + (c.bg || "#f7f7f7") + (c.outline ? ";outline:2px solid #111" : "") +
          '">' + (c.text === undefined ? "" : c.text) + "</td>");
      }
      out.push("</tr>");
    }
    out.push("</table>");
    return out.join("");
  }

  function draw(f) {
    const fr = R.frames[f], b = fr[0], p = fr[1], k = R.order[b];
    const xr = new Set(R.xr[f]), hx = hover ? new Set(R.threads[hover].x) : new Set();
    const hs = hover && hover.split(",")[0] === String(b) ? new Set(R.threads[hover].s) : new Set();
    const panels = [];
    panels.push(table("x", "input x (" + I.h + "x" + I.w + "): global memory", I.h, I.w, (i, j) => {
      const idx = i * I.w + j;
      return {v: I.x[idx], text: NC.fmt(I.x[idx], 2), bg: xr.has(idx) ? colour(k, 0.45) : undefined,
              outline: hx.has(idx)};
    }));
    if (R.patch) {  // kernel 2: this block's shared buffer so far: the PH x PW patch, then the KH x KW weights
      const [PH, PW, KH, KW] = R.patch, vals = {}, now = new Set(), reads = new Set(R.sr[f]);
      R.frames.forEach((g, h) => { if (g[0] === b && g[1] <= p) R.sw[h].forEach((e) => { vals[e[0]] = e[1]; }); });
      R.sw[f].forEach((e) => now.add(e[0]));
      const slot = (i, j) => (i < PH ? (j < PW ? i * PW + j : -1) : i > PH && j < KW ? PH * PW + (i - PH - 1) * KW + j : -1);
      panels.push(table("shared", "shared memory of this block: the " + PH + "x" + PW + " patch, then the " + KH + "x" +
        KW + " weights", PH + 1 + KH, Math.max(PW, KW), (i, j) => {
        const s = slot(i, j);
        if (s < 0) return null;
        if (!(s in vals)) return {text: ""};
        return {v: vals[s], text: NC.fmt(vals[s], 2), outline: hs.has(s),
                bg: now.has(s) ? colour(k, 0.45) : reads.has(s) ? colour(k, 0.75) : "#ececec"};
      }));
    }
    const written = {};
    R.ow[f].forEach((e) => { written[e[0]] = e[1]; });
    const bx = R.block[0], by = R.block[1];
    const cell = NC.$("thread").dataset.cell;
    panels.push(table("y", "output (" + R.HO + "x" + R.WO + "): colour = the block that wrote it", R.HO, R.WO, (i, j) => {
      const idx = i * R.WO + j, wb = R.writer[idx][0], kk = R.order[wb], outline = cell === i + "," + j;
      if (idx in written) {
        const t = written[idx];
        return {text: "<b>" + (by > 1 ? (t % bx) + "," + Math.floor(t / bx) : t) + "</b>", bg: colour(kk, 0), outline};
      }
      if (kk < k) return {v: R.y[idx], text: NC.fmt(R.y[idx], 2), bg: colour(kk, 0.5), outline};
      return {text: "", bg: colour(kk, kk === k ? 0.75 : 0.9), outline};
    }));
    NC.$("panels").innerHTML = panels.join("");
    const what = [];
    if (R.sw[f].length) what.push("copy a tile from global into shared memory");
    else if (R.xr[f].length) what.push("read their inputs from global memory");
    if (R.sr[f].length) what.push("compute from shared memory");
    if (R.ow[f].length) what.push("write their outputs");
    const g = R.grid;
    NC.$("caption").textContent = "block " + (k + 1) + " of " + Object.keys(R.order).length + " (blockIdx " +
      "(" + [b % g[0], Math.floor(b / g[0]) % g[1], Math.floor(b / (g[0] * g[1]))].join(", ") + ")), phase " + p +
      ": " + (p ? "after cuda.syncthreads() #" + p + " (every thread of the block arrived): " : "") + "threads " +
      what.join(", ");
    NC.$("scrub-text").textContent = (f + 1) + " / " + R.frames.length;
  }

  function showThread(i, j) {
    const w = R.writer[i * R.WO + j], key = w[0] + "," + w[1], t = R.threads[key], g = R.grid;
    if (NC.$("thread").dataset.cell === i + "," + j) return;  // already shown (a redraw replaced the cell)
    NC.$("thread").dataset.cell = i + "," + j;
    const bi = [w[0] % g[0], Math.floor(w[0] / g[0]) % g[1], Math.floor(w[0] / (g[0] * g[1]))];
    const ti = [w[1] % R.block[0], Math.floor(w[1] / R.block[0]) % R.block[1], 0];
    hover = key;
    NC.$("thread").innerHTML = "y[" + i + ", " + j + "] = " + NC.fmt(R.y[i * R.WO + j], 4) + " was written by blockIdx (" +
      bi.join(", ") + ") threadIdx (" + ti.join(", ") + "). That thread: " +
      COUNTS.map((c, n) => t.counts[n] + " " + c).join(", ") + " (global reads: " +
      Object.entries(t.by_array).map((e) => e[0] + " " + e[1]).join(", ") + "). Outlined: the x cells it read from " +
      "global memory" + (R.patch ? " (its share of the block's patch, loaded for all its threads) and, while its " +
      "block is shown, the shared-memory cells it computed y[" + i + ", " + j + "] from." : ", its window.");
    draw(scrub.value);
  }

  NC.onChange(["input", "kernel", "bsize"], NC.timed(select));
  NC.onChange(["cuda"], NC.timed(() => { blockSizes(); select(); }));
  NC.onCell(NC.$("panels"), (name, i, j) => { if (name === "y") showThread(i, j); });
  blockSizes();
  select();
})();
