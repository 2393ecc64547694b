// numbacnn explore sgd: looks up the paths numbacnn.optim.sgd took (NC_DATA.surfaces[s].paths) and draws them.
"use strict";
(function () {
  const D = NC_DATA, COL = NC_STYLE.series;
  const TITLES = {sgd: "plain SGD", momentum: "momentum", nesterov: "Nesterov momentum"};
  const PW = 360, PH = 280;  // one path panel, in pixels
  NC.$("app").innerHTML =
    '<div class="controls">' + NC.select("surface", "surface", Object.keys(D.surfaces).map((k) => [k, k])) +
    '<span id="lr-box"></span>' + NC.range("mom", "momentum μ", D.momenta) +
    NC.range("damp", "dampening τ", D.dampenings) + NC.range("wd", "weight decay", D.wds) +
    NC.check("nesterov", "Nesterov (third panel)") + NC.check("maximize", "maximize") + "</div>" +
    '<div class="info" id="formula"></div>' + NC.scrubber("scrub", "step k") +
    '<p class="note legend"><span><svg width="26" height="10"><line x1="0" y1="5" x2="26" y2="5" stroke="' +
    COL.gradient + '" stroke-width="2" stroke-dasharray="4 3"/></svg> −lr·g (gradient)</span><span><svg width="26" ' +
    'height="10"><line x1="0" y1="5" x2="26" y2="5" stroke="' + COL.buffer + '" stroke-width="2" ' +
    'stroke-dasharray="4 3"/></svg> −lr·b (momentum buffer)</span><span><svg width="26" height="10"><line x1="0" ' +
    'y1="5" x2="26" y2="5" stroke="' + COL.update + '" stroke-width="3"/></svg> update p<sub>k+1</sub> − p<sub>k' +
    "</sub></span><span>★ the minimum</span>. Arrow keys step, space plays. The arrows are drawn scaled by lr; " +
    "the numbers below are numbacnn.optim.sgd's, rounded to 6 significant digits.</p>" +
    '<div class="panels" id="panels"></div><div id="loss"></div>';
  NC.$("nesterov").checked = true;

  let S = null;
  const scrub = NC.Scrub("scrub", (k) => draw(k));

  function setSurface(name, lr) {
    const s = D.surfaces[name];
    NC.$("lr-box").innerHTML = NC.range("lr", "learning rate lr", s.lrs);
    NC.setRange("lr", lr === undefined ? s.lr0 : lr);
    NC.setRange("mom", s.mom0);
    NC.onChange(["lr"], () => redraw());
  }
  const st = D.start;
  NC.$("surface").value = st.surface; setSurface(st.surface, st.lr);
  NC.setRange("mom", st.momentum); NC.setRange("damp", st.dampening); NC.setRange("wd", st.wd);
  NC.$("maximize").checked = !!st.maximize;

  function read() {
    const name = NC.$("surface").value, s = D.surfaces[name];
    const lr = NC.rangeValue("lr"), mom = NC.rangeValue("mom"), damp = NC.rangeValue("damp"), wd = NC.rangeValue("wd");
    const mx = NC.$("maximize").checked ? 1 : 0;
    const variants = ["sgd", "momentum"].concat(NC.$("nesterov").checked ? ["nesterov"] : []);
    const key = (v) => (v === "sgd" ? ["sgd", lr, 0, 0, wd, mx] : [v, lr, mom, damp, wd, mx]).join("|");
    return {name, s, lr: Number(lr), mom: Number(mom), damp: Number(damp), wd: Number(wd), mx,
            paths: variants.map((v) => ({v, r: s.paths[key(v)]}))};
  }

  const redraw = NC.timed(function () {
    S = read();
    const h = S;
    NC.$("formula").innerHTML = "f: " + NC.esc(S.s.formula) + ", start p<sub>0</sub> = " + NC.vec(S.s.start) +
      ".  numbacnn.optim.sgd(lr=" + h.lr + ", momentum=" + h.mom + ", dampening=" + h.damp + ", weight_decay=" +
      h.wd + ", nesterov=…, maximize=" + (h.mx ? "True" : "False") + ")";
    scrub.setMax(S.s.steps);
    draw(scrub.value);
  });

  const clamp = (v) => Math.max(-1e5, Math.min(1e5, v));  // far-off points of a diverging run stay drawable
  const px = (x) => clamp(((x - S.s.box[0]) / (S.s.box[1] - S.s.box[0])) * PW);
  const py = (y) => clamp(((S.s.box[3] - y) / (S.s.box[3] - S.s.box[2])) * PH);
  const ok = (a) => Number.isFinite(a[0]) && Number.isFinite(a[1]);
  const at = (arr, k) => [arr[2 * k], arr[2 * k + 1]];

  function arrow(p, d, color, scale, dashed, width) {
    const end = [p[0] + scale * d[0], p[1] + scale * d[1]];
    if (!ok(p) || !ok(end)) return "";
    return '<line x1="' + px(p[0]) + '" y1="' + py(p[1]) + '" x2="' + px(end[0]) + '" y2="' + py(end[1]) +
      '" stroke="' + color + '" stroke-width="' + width + '"' + (dashed ? ' stroke-dasharray="5 3"' : "") +
      ' marker-end="url(#head-' + color.slice(1) + ')"/>';
  }
  function defs() {
    return "<defs>" + [COL.gradient, COL.buffer, COL.update].map((c) => '<marker id="head-' + c.slice(1) +
      '" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse">' +
      '<path d="M0,0 L10,5 L0,10 z" fill="' + c + '"/></marker>').join("") + "</defs>";
  }
  function polyline(r, upto, color, opacity, width) {
    const pts = [];
    for (let k = 0; k <= upto; k++) {
      const p = at(r.p, k);
      if (!ok(p)) break;
      pts.push(px(p[0]).toFixed(1) + "," + py(p[1]).toFixed(1));
    }
    return '<polyline points="' + pts.join(" ") + '" fill="none" stroke="' + color + '" stroke-opacity="' + opacity +
      '" stroke-width="' + width + '"/>';
  }
  const num = (name, v) => '<span class="num" data-n="' + name + '" data-v="' + v + '">' + NC.fmt(v, 4) + "</span>";
  const nvec = (name, a) => "(" + num(name + "0", a[0]) + ", " + num(name + "1", a[1]) + ")";

  function panel(v, r, k) {
    const color = COL[v];
    let html = '<div class="panel sgdpanel" id="panel-' + v + '"><h3 style="color:' + color + '">' + TITLES[v] + "</h3>";
    if (typeof r === "string") return html + '<div class="error" style="width:' + PW + 'px">numbacnn.optim.sgd: ' +
      NC.esc(r) + "</div></div>";
    const p = at(r.p, k), g = at(r.g, k), b = at(r.b, k), d = at(r.d, k), mom = v !== "sgd";
    const svg = ['<svg width="' + PW + '" height="' + PH + '" style="border:1px solid #ccc">' + defs() +
      '<image href="' + S.s.png + '" x="0" y="0" width="' + PW + '" height="' + PH + '" preserveAspectRatio="none"/>',
      '<text x="' + px(S.s.minimum[0]) + '" y="' + py(S.s.minimum[1]) + '" text-anchor="middle" dominant-baseline=' +
      '"central" font-size="16" fill="#444">★</text>', polyline(r, S.s.steps, color, 0.2, 1),
      polyline(r, k, color, 1, 1.8), arrow(p, g, COL.gradient, -S.lr, true, 1.6),
      mom ? arrow(p, b, COL.buffer, -S.lr, true, 1.6) : "", arrow(p, d, COL.update, 1, false, 2.6)];
    if (ok(p)) svg.push('<circle cx="' + px(p[0]) + '" cy="' + py(p[1]) + '" r="5" fill="' + color + '" stroke="#000"/>');
    svg.push("</svg>");
    const g2 = (S.mx ? "−g" : "g") + (S.wd ? " + " + S.wd + "·p" : "");
    const rule = mom ? "b ← " + S.mom + "·b + " + (1 - S.damp === 1 ? "" : "(1 − " + S.damp + ")·") + "g′  (step 0: b ← g′)" +
      ";  p ← p − " + S.lr + "·" + (v === "nesterov" ? "(g′ + " + S.mom + "·b)" : "b") : "p ← p − " + S.lr + "·g′";
    let off = "";
    if (!ok(p)) off = ' <span class="error">overflowed (the run diverged)</span>';
    else if (p[0] < S.s.box[0] || p[0] > S.s.box[1] || p[1] < S.s.box[2] || p[1] > S.s.box[3]) off = " (off the plot)";
    html += svg.join("") + '<div class="info nums" style="width:' + PW + 'px">' +
      "p<sub>" + k + "</sub> = " + nvec("p", p) + off + "<br>f(p<sub>" + k + "</sub>) = " + num("f", r.f[k]) +
      "<br>g<sub>" + k + "</sub> = ∇f(p<sub>" + k + "</sub>) = " + nvec("g", g) +
      "<br>" + (mom ? "b<sub>" + k + "</sub> = " + nvec("b", b) : "b: no momentum buffer") +
      "<br>update p<sub>" + (k + 1) + "</sub> − p<sub>" + k + "</sub> = " + nvec("d", d) +
      "<br>p<sub>" + (k + 1) + "</sub> = " + nvec("q", at(r.p, k + 1)) +
      '<br><span class="note">g′ = ' + g2 + ";  " + rule + "</span></div></div>";
    return html;
  }

  function lossPlot(k) {
    const W = 1140, H = 170, L = 50, steps = S.s.steps;
    let lo = Infinity, hi = -Infinity;
    for (const {r} of S.paths) {
      if (typeof r === "string") continue;
      for (const f of r.f) if (Number.isFinite(f) && f > 0) { lo = Math.min(lo, f); hi = Math.max(hi, f); }
    }
    if (!(lo < hi)) { lo = 1e-3; hi = 1; }
    hi = Math.min(hi, 1e6 * r0());
    const lx = (s) => L + (s / steps) * (W - L - 10);
    const ly = (f) => 10 + (1 - (Math.log10(Math.min(Math.max(f, lo), hi)) - Math.log10(lo)) /
      (Math.log10(hi) - Math.log10(lo))) * (H - 30);
    const out = ['<svg width="' + W + '" height="' + H + '"><text x="4" y="14" font-size="12">f(p_k), log scale</text>',
      '<line x1="' + L + '" y1="' + (H - 20) + '" x2="' + (W - 10) + '" y2="' + (H - 20) + '" stroke="#999"/>',
      '<text x="' + (W - 10) + '" y="' + (H - 4) + '" font-size="11" text-anchor="end">step k (of ' + steps + ")</text>",
      '<line x1="' + lx(k) + '" y1="10" x2="' + lx(k) + '" y2="' + (H - 20) + '" stroke="#ff8c00" stroke-width="1.5"/>'];
    for (const {v, r} of S.paths) {
      if (typeof r === "string") continue;
      const pts = [];
      for (let s = 0; s <= steps; s++) if (Number.isFinite(r.f[s])) pts.push(lx(s).toFixed(1) + "," + ly(r.f[s]).toFixed(1));
      out.push('<polyline points="' + pts.join(" ") + '" fill="none" stroke="' + COL[v] + '" stroke-width="1.6"/>');
      if (Number.isFinite(r.f[k])) out.push('<circle cx="' + lx(k) + '" cy="' + ly(r.f[k]) + '" r="4" fill="' + COL[v] + '"/>');
    }
    return out.join("") + "</svg>";
  }
  function r0() {
    for (const {r} of S.paths) if (typeof r !== "string" && Number.isFinite(r.f[0])) return Math.max(r.f[0], 1e-12);
    return 1;
  }

  function draw(k) {
    NC.$("panels").innerHTML = S.paths.map(({v, r}) => panel(v, r, k)).join("");
    NC.$("loss").innerHTML = lossPlot(k);
    NC.$("scrub-text").textContent = "k = " + k + " of " + S.s.steps + " steps";
  }

  NC.$("surface").addEventListener("change", () => { setSurface(NC.$("surface").value); redraw(); });
  NC.onChange(["mom", "damp", "wd", "nesterov", "maximize"], redraw);
  redraw();
})();
