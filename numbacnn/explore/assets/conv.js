// numbacnn explore conv: looks up the conv2d / conv2d_backward results and window maps in NC_DATA.
"use strict";
(function () {
  const D = NC_DATA;
  const app = NC.$("app");
  const chanNames = Object.keys(D.chans);
  app.innerHTML =
    '<div class="controls">' +
    NC.select("input", "input", Object.keys(D.inputs).map((k) => [k, k])) +
    NC.select("kernel", "kernel", Object.keys(D.kernels).map((k) => [k, k])) +
    NC.range("pad", "padding", D.pads) + NC.range("stride", "stride", D.strides) +
    NC.range("dil", "dilation", D.dils) + NC.check("flip", "flip (strict convolution)") +
    NC.select("chan", "channels in → out", chanNames.map((k) => [k, k])) +
    NC.select("pass", "pass", [["forward", "forward"], ["backward", "backward (gradients)"]]) +
    "</div>" +
    '<div class="info" id="shape"></div><div class="info">PyTorch: <span class="copy" id="torch"></span></div>' +
    NC.scrubber("scrub", "step") +
    '<div class="caption" id="caption"></div><div class="panels" id="panels"></div>' +
    '<p class="note legend"><span><span class="sw" style="outline:3px solid #ff8c00"></span>the window / the taps ' +
    'it uses</span><span><span class="sw" style="outline:3px solid #111"></span>the cell being computed</span>' +
    '<span><span class="sw" style="outline:3px solid #9467bd"></span>output gradients that reach it</span>' +
    '<span><span class="sw" style="background:#d9d9d9"></span>padding (zeros)</span>. Arrow keys step, space ' +
    "plays. Numbers: float32 as the kernels wrote them, shown rounded (hover a cell for all its digits).</p>";

  const st = D.start;
  NC.$("input").value = st.input; NC.$("kernel").value = st.kernel;
  NC.setRange("pad", st.pad); NC.setRange("stride", st.stride); NC.setRange("dil", st.dil);
  NC.$("flip").checked = !!st.flip; NC.$("chan").value = st.chan; NC.$("pass").value = st.pass_;

  let S = null;  // the current selection: everything the draw functions look up
  const scrub = NC.Scrub("scrub", (m) => draw(m));

  function read() {
    const inp = NC.$("input").value, ker = NC.$("kernel").value, chan = NC.$("chan").value;
    const p = NC.rangeValue("pad"), s = NC.rangeValue("stride"), d = NC.rangeValue("dil");
    const f = NC.$("flip").checked ? 1 : 0;
    const I = D.inputs[inp], K = D.kernels[ker], ch = D.chans[chan];
    const key = [inp, ker, p, s, d, f, chan].join("|");
    const geo = D.geos[[I.h, I.w, K.kh, K.kw, p, s, d, f].join(",")];
    return {inp, ker, chan, p: Number(p), s: Number(s), d: Number(d), f, H: I.h, W: I.w, KH: K.kh, KW: K.kw, ch, geo,
            back: NC.$("pass").value === "backward", x: D.xs[inp + "|" + chan], w: D.ws[[ker, chan, f].join("|")],
            fw: D.fw[key], bw: D.bw[key]};
  }

  const X = (c, h, w) => S.x[(c * S.H + h) * S.W + w];
  const Wt = (o, c, p, q) => S.w[((o * S.ch.Cg + c) * S.KH + p) * S.KW + q];
  const Y = (o, i, j) => S.fw[(o * S.geo.ho + i) * S.geo.wo + j];
  const GY = (o, i, j) => S.gy[(o * S.geo.ho + i) * S.geo.wo + j];
  const inside = (h, w) => h >= 0 && h < S.H && w >= 0 && w < S.W;

  function shapeText() {
    const g = S.geo;
    const one = (n, k, name, size) => name + " = ⌊(" + n + " + 2·" + S.p + " − " + S.d + "·(" + k + " − 1) − 1) / " +
      S.s + "⌋ + 1 = " + size;
    return "output shape ⌊(H + 2·padding − dilation·(KH − 1) − 1) / stride⌋ + 1:  " + one(S.H, S.KH, "HO", g.ho) +
      ";  " + one(S.W, S.KW, "WO", g.wo);
  }
  function torchText() {
    const c = S.ch;
    const call = "torch.nn.functional.conv2d(x, " + (S.f ? "w.flip(-2, -1)" : "w") + ", stride=" + S.s +
      ", padding=" + S.p + ", dilation=" + S.d + ", groups=" + c.G + ")";
    const shapes = "  # x: (1, " + c.C + ", " + S.H + ", " + S.W + "), w: (" + c.O + ", " + c.Cg + ", " + S.KH +
      ", " + S.KW + ")";
    return S.back ? "y = " + call + "; y.backward(grad_out)" + shapes + ", requires_grad=True; then x.grad, w.grad"
      : call + shapes;
  }

  // input channel c drawn with its padding; mark(h, w) in input coordinates
  function inputGrid(c, mark, title) {
    const P = S.p;
    const labels = (n) => Array.from({length: n + 2 * P}, (_, k) => k - P);
    return NC.grid({name: "x" + c, title: title || ("input x, channel " + c), rows: S.H + 2 * P, cols: S.W + 2 * P,
      rowLabels: labels(S.H), colLabels: labels(S.W), color: S.xColor,
      value: (i, j) => (inside(i - P, j - P) ? X(c, i - P, j - P) : null),
      mark: (i, j) => mark(i - P, j - P)});
  }
  function smallGrid(name, title, rows, cols, value, color, mark) {
    return NC.grid({name, title, rows, cols, value, color, mark: mark || null});
  }
  function kernelGrids(mark) {
    const c = S.ch, out = [];
    for (let o = 0; o < c.O; o++) {
      for (let k = 0; k < c.Cg; k++) {
        out.push(smallGrid("w" + o + "_" + k, "kernel K[" + o + ", " + k + "]" + (S.f ? " flipped" : ""), S.KH, S.KW,
          (p, q) => Wt(o, k, p, q), S.wColor, (p, q) => mark(o, k, p, q)));
      }
    }
    return out.join("");
  }

  const redraw = NC.timed(function () {
    S = read();
    NC.$("torch").textContent = torchText();
    if (typeof S.fw === "string") {
      NC.$("shape").innerHTML = '<span class="error">numbacnn.conv2d: ' + NC.esc(S.fw) + "</span>";
      NC.$("panels").innerHTML = ""; NC.$("caption").textContent = "";
      scrub.setMax(1);
      return;
    }
    NC.$("shape").textContent = shapeText();
    S.xColor = NC.scheme([S.x]);
    S.wColor = NC.scheme([S.w], true);
    const c = S.ch, g = S.geo;
    if (S.back) {
      S.gy = D.gys[[c.O, g.ho, g.wo].join(",")];
      S.gx = S.bw[0]; S.gw = S.bw[1];
      S.Mw = c.O * c.Cg * S.KH * S.KW;
      scrub.setMax(S.Mw + c.C * S.H * S.W);
    } else {
      scrub.setMax(c.O * g.ho * g.wo);
    }
    draw(scrub.value);
  });

  function draw(m) {
    if (typeof S.fw === "string") return;
    if (S.back) drawBackward(m); else drawForward(m);
  }

  function drawForward(m) {
    const c = S.ch, g = S.geo, HW = g.ho * g.wo;
    const o = Math.floor(m / HW), i = Math.floor((m % HW) / g.wo), j = m % g.wo;
    const rows = g.rows[i], cols = g.cols[j], reads = c.inch[o];
    const inWin = (h, w) => rows.indexOf(h) >= 0 && cols.indexOf(w) >= 0;
    NC.$("scrub-text").textContent = (m + 1) + " of " + (c.O * HW) + ": y[" + o + "][" + i + ", " + j + "]";
    const yColor = NC.scheme([S.fw], true);
    let html = '<div class="panel"><h3>input</h3>';
    for (let k = 0; k < c.C; k++) {
      html += inputGrid(k, (h, w) => (reads.indexOf(k) >= 0 && inWin(h, w) ? "win" : (reads.indexOf(k) < 0 ? "dim" : "")));
    }
    html += '</div><div class="panel"><h3>kernels (as applied)</h3>' +
      kernelGrids((oo) => (oo === o ? "win" : "dim")) + '</div><div class="panel"><h3>output y = conv2d(x, K)</h3>';
    for (let oo = 0; oo < c.O; oo++) {
      html += smallGrid("y" + oo, "output y, channel " + oo, g.ho, g.wo, (a, b) => Y(oo, a, b), yColor,
        (a, b) => (oo === o && a === i && b === j ? "cur" : ""));
    }
    NC.$("panels").innerHTML = html + "</div>";
    // the caption: every product of the window, then the kernel's own sum
    const groups = [];
    for (let k = 0; k < reads.length; k++) {
      const terms = [];
      for (let p = 0; p < S.KH; p++) {
        for (let q = 0; q < S.KW; q++) {
          const h = rows[p], w = cols[q];
          terms.push(NC.par(inside(h, w) ? X(reads[k], h, w) : 0) + "·" + NC.par(Wt(o, k, p, q)));
        }
      }
      groups.push(reads.length > 1 ? "[x" + reads[k] + ": " + terms.join(" + ") + "]" : terms.join(" + "));
    }
    const span = (name, a) => name + " " + a[0] + (a.length > 1 ? "–" + a[a.length - 1] : "");
    NC.$("caption").innerHTML = "<b>y[" + o + "][" + i + ", " + j + "]</b> from x " + span("rows", rows) + ", " +
      span("cols", cols) + (rows.some((h) => h < 0 || h >= S.H) || cols.some((w) => w < 0 || w >= S.W) ?
      " (padding reads 0)" : "") + ":<br>" + groups.join(" + ") + ' = <b id="result">' + NC.fmt(Y(o, i, j)) + "</b>";
  }

  function drawBackward(m) {
    const c = S.ch, g = S.geo;
    const gyColor = NC.scheme([S.gy], true), gwColor = NC.scheme([S.gw], true), gxColor = NC.scheme([S.gx], true);
    const GW = (o, k, p, q) => S.gw[((o * c.Cg + k) * S.KH + p) * S.KW + q];
    const GX = (k, h, w) => S.gx[(k * S.H + h) * S.W + w];
    let xMark = () => "", wMark = () => "", gyMark = () => "", gwCur = [-1], gxCur = [-1], caption;
    if (m < S.Mw) {  // grad_weight[o, k, p, q] = sum_ij grad_out[o, i, j] * x[inch, gwr[p][i], gwc[q][j]]
      const KK = S.KH * S.KW, o = Math.floor(m / (c.Cg * KK)), k = Math.floor((m % (c.Cg * KK)) / KK);
      const p = Math.floor((m % KK) / S.KW), q = m % S.KW, xc = c.inch[o][k];
      const rr = g.gwr[p], cc = g.gwc[q];
      xMark = (ch, h, w) => (ch === xc && rr.indexOf(h) >= 0 && cc.indexOf(w) >= 0 ? "win" : "");
      gyMark = (oo) => (oo === o ? "reach" : "");
      wMark = (oo, kk, a, b) => (oo === o && kk === k && a === p && b === q ? "win" : "");
      gwCur = [o, k, p, q];
      const terms = [];
      for (let i = 0; i < g.ho; i++) {
        for (let j = 0; j < g.wo; j++) {
          if (inside(rr[i], cc[j])) terms.push(NC.par(GY(o, i, j)) + "·" + NC.par(X(xc, rr[i], cc[j])));
        }
      }
      caption = "<b>grad_weight[" + o + ", " + k + "][" + p + ", " + q + "]</b> = Σ<sub>i,j</sub> grad_out[" + o +
        "][i, j] · x[" + xc + "][rows " + rr.join(",") + "; cols " + cc.join(",") + "] (the input this tap read" +
        " for each output):<br>" + (terms.length ? terms.join(" + ") : "(every read is padding)") +
        ' = <b id="result">' + NC.fmt(GW(o, k, p, q)) + "</b>";
      NC.$("scrub-text").textContent = (m + 1) + " of " + scrub_total() + ": grad_weight[" + o + ", " + k + "][" + p +
        ", " + q + "]";
    } else {  // grad_x[k, h, w] = sum over o, p, q with gxr[h][p] >= 0 and gxc[w][q] >= 0 of grad_out * kernel
      const r = m - S.Mw, k = Math.floor(r / (S.H * S.W)), h = Math.floor((r % (S.H * S.W)) / S.W), w = r % S.W;
      const reach = [], terms = [];
      for (const o of c.outch[k]) {
        for (let p = 0; p < S.KH; p++) {
          for (let q = 0; q < S.KW; q++) {
            const i = g.gxr[h][p], j = g.gxc[w][q];
            if (i < 0 || j < 0) continue;
            reach.push([o, i, j, p, q]);
            terms.push(NC.par(GY(o, i, j)) + "·" + NC.par(Wt(o, c.cl[k], p, q)));
          }
        }
      }
      xMark = (ch, a, b) => (ch === k && a === h && b === w ? "win" : "");
      gyMark = (o, i, j) => (reach.some((t) => t[0] === o && t[1] === i && t[2] === j) ? "reach" : "");
      wMark = (o, kk, p, q) => (kk === c.cl[k] && reach.some((t) => t[0] === o && t[3] === p && t[4] === q) ? "win" : "");
      gxCur = [k, h, w];
      caption = "<b>grad_x[" + k + "][" + h + ", " + w + "]</b>: the output gradients whose windows covered x[" + k +
        "][" + h + ", " + w + "], times the kernel tap that read it (" + reach.length + " of them):<br>" +
        (terms.length ? terms.join(" + ") : "no window reads this cell (it falls between strides or outside)") +
        ' = <b id="result">' + NC.fmt(GX(k, h, w)) + "</b>";
      NC.$("scrub-text").textContent = (m + 1) + " of " + scrub_total() + ": grad_x[" + k + "][" + h + ", " + w + "]";
    }
    let html = '<div class="panel"><h3>input x and kernels</h3>';
    for (let k = 0; k < c.C; k++) html += inputGrid(k, (h, w) => xMark(k, h, w));
    html += kernelGrids(wMark) + '</div><div class="panel"><h3>grad_out = ∂L/∂y (an example: seeded integers −1…2)</h3>';
    for (let o = 0; o < c.O; o++) {
      html += smallGrid("gy" + o, "grad_out, channel " + o, g.ho, g.wo, (i, j) => GY(o, i, j), gyColor,
        (i, j) => gyMark(o, i, j));
    }
    html += '</div><div class="panel"><h3>gradients (numbacnn.conv2d_backward)</h3>';
    for (let o = 0; o < c.O; o++) {
      for (let k = 0; k < c.Cg; k++) {
        html += smallGrid("gw" + o + "_" + k, "grad_weight[" + o + ", " + k + "]", S.KH, S.KW, (p, q) => GW(o, k, p, q),
          gwColor, (p, q) => (gwCur[0] === o && gwCur[1] === k && gwCur[2] === p && gwCur[3] === q ? "cur" : ""));
      }
    }
    for (let k = 0; k < c.C; k++) {
      html += smallGrid("gx" + k, "grad_x, channel " + k, S.H, S.W, (h, w) => GX(k, h, w), gxColor,
        (h, w) => (gxCur[0] === k && gxCur[1] === h && gxCur[2] === w ? "cur" : ""));
    }
    NC.$("panels").innerHTML = html + "</div>";
    NC.$("caption").innerHTML = caption;
  }
  const scrub_total = () => S.Mw + S.ch.C * S.H * S.W;

  NC.onCell(NC.$("panels"), function (name, i, j) {
    if (typeof S.fw === "string") return;
    const g = S.geo, c = S.ch;
    let m = -1;
    if (!S.back && name[0] === "y") m = (Number(name.slice(1)) * g.ho + i) * g.wo + j;
    if (S.back && name.slice(0, 2) === "gw") {
      const [o, k] = name.slice(2).split("_").map(Number);
      m = ((o * c.Cg + k) * S.KH + i) * S.KW + j;
    }
    if (S.back && name.slice(0, 2) === "gx") m = S.Mw + (Number(name.slice(2)) * S.H + i) * S.W + j;
    if (S.back && name[0] === "x" && inside(i - S.p, j - S.p)) {
      m = S.Mw + (Number(name.slice(1)) * S.H + i - S.p) * S.W + j - S.p;
    }
    if (m >= 0 && m !== scrub.value) { scrub.stop(); scrub.set(m); }
  });
  NC.onChange(["input", "kernel", "pad", "stride", "dil", "flip", "chan", "pass"], redraw);
  redraw();
})();
