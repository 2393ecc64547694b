// numbacnn explore pool: looks up the pooling kernels' outputs, chosen indices, divisors and gradients in NC_DATA.
"use strict";
(function () {
  const D = NC_DATA;
  NC.$("app").innerHTML =
    '<div class="controls">' +
    NC.select("input", "input", Object.keys(D.inputs).map((k) => [k, k])) +
    NC.select("mode", "mode", D.modes.map((k) => [k, k + "_pool2d"])) +
    NC.range("k", "window", D.windows) + NC.range("s", "stride", D.strides) + NC.range("p", "padding", D.pads) +
    NC.check("ceil", "ceil_mode") + NC.check("cip", "count_include_pad (avg)") +
    NC.select("pass", "pass", [["forward", "forward"], ["backward", "backward (gradients)"]]) + "</div>" +
    '<div class="info" id="shape"></div><div class="info">PyTorch: <span class="copy" id="torch"></span></div>' +
    NC.scrubber("scrub", "step") +
    '<div class="caption" id="caption"></div><div class="panels" id="panels"></div>' +
    '<p class="note legend"><span><span class="sw" style="outline:3px solid #ff8c00"></span>the window</span>' +
    '<span><span class="sw" style="box-shadow:inset 0 0 0 3px #00a651"></span>the element max/min picks ' +
    "(the kernel's index)</span><span><span class=\"sw\" style=\"outline:3px solid #111\"></span>the cell being " +
    'computed</span><span><span class="sw" style="outline:3px solid #9467bd"></span>output gradients routed ' +
    'to it</span><span><span class="sw" style="background:#d9d9d9"></span>padding</span>. Arrow keys step, ' +
    "space plays. grad_out = ∂L/∂y is an example (seeded integers −1…2).</p>";
  const st = D.start;
  NC.$("input").value = st.input; NC.$("mode").value = st.mode; NC.setRange("k", st.k); NC.setRange("s", st.s);
  NC.setRange("p", st.p); NC.$("ceil").checked = !!st.ceil; NC.$("cip").checked = !!st.cip;
  NC.$("pass").value = st.pass_;

  let S = null;
  const scrub = NC.Scrub("scrub", (m) => draw(m));
  const PADTEXT = {max: "−∞", min: "+∞", avg: "0"};

  function read() {
    const inp = NC.$("input").value, mode = NC.$("mode").value;
    const k = Number(NC.rangeValue("k")), s = Number(NC.rangeValue("s")), p = Number(NC.rangeValue("p"));
    const ceil = NC.$("ceil").checked ? 1 : 0, cip = mode === "avg" && NC.$("cip").checked ? 1 : 0;
    NC.$("cip").disabled = mode !== "avg";
    const I = D.inputs[inp];
    return {inp, mode, k, s, p, ceil, cip, H: I.h, W: I.w, x: D.xs[inp], back: NC.$("pass").value === "backward",
            r: D.combos[[inp, mode, k, s, p, ceil, cip].join("|")]};
  }
  const X = (h, w) => S.x[h * S.W + w];
  const inside = (h, w) => h >= 0 && h < S.H && w >= 0 && w < S.W;

  function torchText() {
    const args = "kernel_size=" + S.k + ", stride=" + S.s + ", padding=" + S.p + ", ceil_mode=" + (S.ceil ? "True" : "False");
    if (S.mode === "avg") return "torch.nn.functional.avg_pool2d(x, " + args + ", count_include_pad=" + (S.cip ? "True" : "False") + ")";
    if (S.mode === "max") return "torch.nn.functional.max_pool2d(x, " + args + ")";
    return "-torch.nn.functional.max_pool2d(-x, " + args + ")  # PyTorch has no min_pool2d";
  }
  function shapeText() {
    const br = S.ceil ? ["⌈", "⌉"] : ["⌊", "⌋"];
    const one = (n, name, v) => name + " = " + br[0] + "(" + n + " + 2·" + S.p + " − " + S.k + ") / " + S.s + br[1] +
      " + 1 = " + v;
    return "output shape " + br[0] + "(H + 2·padding − window) / stride" + br[1] + " + 1" +
      (S.ceil ? " (ceil_mode; a last window that would start in the right padding is dropped)" : "") + ":  " +
      one(S.H, "HO", S.r.ho) + ";  " + one(S.W, "WO", S.r.wo);
  }

  const redraw = NC.timed(function () {
    S = read();
    NC.$("torch").textContent = torchText();
    if (typeof S.r === "string") {
      NC.$("shape").innerHTML = '<span class="error">numbacnn.' + S.mode + "_pool2d: " + NC.esc(S.r) + "</span>";
      NC.$("panels").innerHTML = ""; NC.$("caption").textContent = "";
      scrub.setMax(1);
      return;
    }
    NC.$("shape").textContent = shapeText();
    S.xColor = NC.scheme([S.x]);
    scrub.setMax(S.back ? S.H * S.W : S.r.ho * S.r.wo);
    draw(scrub.value);
  });

  function inputGrid(name, title, mark) {
    const P = S.p, r = S.r;
    const labels = (n) => Array.from({length: n + P + 1}, (_, k) => k - P);
    return NC.grid({name, title, rows: r.r1 + P + 1, cols: r.c1 + P + 1, rowLabels: labels(r.r1),
      colLabels: labels(r.c1), color: S.xColor, padText: PADTEXT[S.mode],
      value: (i, j) => (inside(i - P, j - P) ? X(i - P, j - P) : null), mark: (i, j) => mark(i - P, j - P)});
  }
  function outGrid(name, title, arr, mark, signed) {
    return NC.grid({name, title, rows: S.r.ho, cols: S.r.wo, value: (i, j) => arr[i * S.r.wo + j],
      color: NC.scheme([arr], signed), mark});
  }
  // the windows whose gradient reaches input cell (h, w): [m, share text]
  function routes(h, w) {
    const r = S.r, out = [];
    for (let m = 0; m < r.ho * r.wo; m++) {
      const i = Math.floor(m / r.wo), j = m % r.wo;
      if (r.rows[i].indexOf(h) < 0 || r.cols[j].indexOf(w) < 0) continue;
      if (S.mode === "avg") out.push([m, NC.par(r.gy[m]) + "/" + r.div[m]]);
      else if (r.chosen[m] === h * S.W + w) out.push([m, NC.par(r.gy[m])]);
    }
    return out;
  }

  function draw(m) {
    if (typeof S.r === "string") return;
    const r = S.r;
    if (!S.back) {
      const i = Math.floor(m / r.wo), j = m % r.wo, rows = r.rows[i], cols = r.cols[j];
      const pick = S.mode === "avg" ? -1 : r.chosen[m];
      const inWin = (h, w) => rows.indexOf(h) >= 0 && cols.indexOf(w) >= 0;
      NC.$("panels").innerHTML = '<div class="panel">' +
        inputGrid("x", "input x" + (S.p || S.ceil ? " (hatched: padding " + PADTEXT[S.mode] + ")" : ""),
          (h, w) => (inWin(h, w) ? "win" : "") + (inside(h, w) && h * S.W + w === pick ? " chosen" : "")) +
        outGrid("y", "output y = " + S.mode + "_pool2d(x)", r.out, (a, b) => (a === i && b === j ? "cur" : "")) +
        "</div>";
      const vals = [];
      for (const h of rows) for (const w of cols) vals.push(inside(h, w) ? NC.fmt(X(h, w)) : PADTEXT[S.mode]);
      let cap = "<b>y[" + i + ", " + j + "]</b> = ";
      if (S.mode === "avg") {
        const real = [];
        for (const h of rows) for (const w of cols) if (inside(h, w)) real.push(NC.fmt(X(h, w)));
        cap += "(" + real.join(" + ") + ") / " + r.div[m] + ' = <b id="result">' + NC.fmt(r.out[m]) + "</b>" +
          '<br><span class="note">divisor ' + r.div[m] + ": the window's cells " + (S.cip ?
          "including padding (count_include_pad)" : "inside the input") + "; padding adds 0 to the sum</span>";
      } else {
        cap += S.mode + "(" + vals.join(", ") + ') = <b id="result">' + NC.fmt(r.out[m]) + "</b>, picked at x[" +
          Math.floor(pick / S.W) + ", " + (pick % S.W) + "] (the kernel's index " + pick + ")";
      }
      NC.$("caption").innerHTML = cap;
      NC.$("scrub-text").textContent = (m + 1) + " of " + r.ho * r.wo + ": y[" + i + ", " + j + "]";
    } else {
      const h = Math.floor(m / S.W), w = m % S.W, ways = routes(h, w);
      const reached = ways.map((t) => t[0]);
      NC.$("panels").innerHTML = '<div class="panel">' +
        inputGrid("x", "input x", (a, b) => (a === h && b === w ? "win" : "")) +
        outGrid("gy", "grad_out (example)", r.gy,
          (a, b) => (reached.indexOf(a * r.wo + b) >= 0 ? "reach" : ""), true) +
        NC.grid({name: "gx", title: "grad_x = " + S.mode + "_pool2d_backward", rows: S.H, cols: S.W,
          value: (a, b) => r.gx[a * S.W + b], color: NC.scheme([r.gx], true),
          mark: (a, b) => (a === h && b === w ? "cur" : "")}) + "</div>";
      NC.$("caption").innerHTML = "<b>grad_x[" + h + ", " + w + "]</b> = " + (ways.length ? ways.map((t) => t[1] +
        " (from y[" + Math.floor(t[0] / r.wo) + ", " + (t[0] % r.wo) + "])").join(" + ") :
        (S.mode === "avg" ? "no window covers this cell" : "no window picked this cell")) +
        ' = <b id="result">' + NC.fmt(r.gx[m]) + "</b>";
      NC.$("scrub-text").textContent = (m + 1) + " of " + S.H * S.W + ": grad_x[" + h + ", " + w + "]";
    }
  }

  NC.onCell(NC.$("panels"), function (name, i, j) {
    if (typeof S.r === "string") return;
    let m = -1;
    if (!S.back && name === "y") m = i * S.r.wo + j;
    if (S.back && name === "gx") m = i * S.W + j;
    if (S.back && name === "x" && inside(i - S.p, j - S.p)) m = (i - S.p) * S.W + j - S.p;
    if (m >= 0 && m !== scrub.value) { scrub.stop(); scrub.set(m); }
  });
  NC.onChange(["input", "mode", "k", "s", "p", "ceil", "cip", "pass"], redraw);
  redraw();
})();
