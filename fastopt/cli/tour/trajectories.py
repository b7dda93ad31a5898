"""Paths on 2-D surfaces, drawn so a learner can read them: small multiples, a race, a playground.

Every path here comes from the real optimizers (``fastopt.Adam(...)`` on the chosen backend)
stepping a point of two coordinates; nothing is simulated in JavaScript. Two surfaces:

* **Rosenbrock's valley** ``(1 - x)^2 + 100 (y - x^2)^2``: a long, curved, flat-bottomed valley; the
  minimum (1, 1) sits at its far end. Steep walls (curvature ~1000 across) and a flat floor
  (curvature ~1 along) make one learning rate too large for one direction and too small for the
  other.
* **A saddle** ``x^2 + y^4/4 - y^2/2``: a saddle point at (0, 0) between two minima at (0, +-1). The
  start lies almost on the ridge (y = 0.001), where the gradient across it is tiny, so escaping
  is the whole problem: SGD's step is proportional to that tiny gradient, an adaptive method's is
  not.

Three views, for :mod:`~fastopt.cli.tour.stepping_stones` and the report:

* :func:`small_multiples` - one panel per optimizer, the same axes, start and minimum marked, each
  optimizer at the learning rate from one shared grid (:data:`LR_GRID`) that gets lowest while its
  whole path stays on the plot.
* :func:`race_data` - the same paths for an in-page SVG animation (all optimizers on one surface).
* :func:`playground_data` - paths at a grid of lr, rho and betas, for the report's sliders.

The animation and the sliders are drawn by :data:`SCRIPT` (plain JavaScript, inline in the page,
no library, no network).
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass

import numpy as np

import fastopt

from ._common import COLOURS, new_figure, save_figure

LR_GRID = tuple(10.0 ** (k / 2) for k in range(-8, 1))  # 1e-4, 3.2e-4, ..., 1: one grid for every optimizer
OPTIMIZERS = ("SGD", "SGD+momentum", "Adagrad", "RMSprop", "Adadelta", "Adam", "Adamax", "NAdam", "RAdam", "Lion")
ESCAPE = 1e3  # a path whose point leaves |x|, |y| <= ESCAPE has diverged: it stops there


@dataclass(frozen=True)
class Surface:
    name: str
    title: str
    formula: str  # as printed on the figures
    js: str  # the same function of x and y, in JavaScript (for the loss curves in the page)
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    start: tuple[float, float]
    minima: tuple[tuple[float, float], ...]
    steps: int
    levels: tuple[float, ...]  # contour levels to draw

    def value(self, x, y):
        """f(x, y), element-wise for arrays (the contour plots evaluate a whole grid at once)."""
        if self.name == "rosenbrock":
            return (1.0 - x) ** 2 + 100.0 * (y - x * x) ** 2
        return x * x + 0.25 * y**4 - 0.5 * y * y

    def value_and_grad(self, point: np.ndarray) -> tuple[float, np.ndarray]:
        x, y = point
        if self.name == "rosenbrock":
            grad = np.array([-2.0 * (1.0 - x) - 400.0 * x * (y - x * x), 200.0 * (y - x * x)])
        else:
            grad = np.array([2.0 * x, y**3 - y])
        return float(self.value(x, y)), grad

    def minimum_value(self) -> float:
        return self.value_and_grad(np.array(self.minima[0]))[0]


ROSENBROCK = Surface(
    "rosenbrock", "Rosenbrock's valley", "(1 - x)² + 100 (y - x²)²", "(1-x)*(1-x) + 100*(y-x*x)*(y-x*x)",
    (-2.0, 2.0), (-1.0, 3.0), (-1.5, 2.0), ((1.0, 1.0),), 1000,
    tuple(np.round(np.logspace(-1, 3.5, 12), 3)),
)
SADDLE = Surface(
    "saddle", "a saddle between two minima", "x² + y⁴/4 - y²/2", "x*x + 0.25*y*y*y*y - 0.5*y*y",
    (-2.0, 2.0), (-1.6, 1.6), (1.8, 1e-3), ((0.0, 1.0), (0.0, -1.0)), 300,
    (-0.24, -0.2, -0.1, 0.0, 0.25, 0.5, 1.0, 2.0, 3.0, 4.0),
)
SURFACES = {s.name: s for s in (ROSENBROCK, SADDLE)}


def make_optimizer(name: str, params, lr: float, backend: str, **options):
    """``name`` from :data:`OPTIMIZERS` ("SGD+momentum" is SGD with momentum 0.9); options override."""
    if name == "SGD+momentum":
        return fastopt.SGD(params, lr=lr, **{"momentum": 0.9, **options}, backend=backend)
    return getattr(fastopt, name)(params, lr=lr, **options, backend=backend)


def path(surface: Surface, name: str, lr: float, backend: str, steps: int | None = None, **options) -> np.ndarray:
    """The points ``(steps + 1, 2)`` visited from the start; shorter if the run diverged."""
    point = np.array(surface.start, dtype=np.float64)
    opt = make_optimizer(name, [point], lr, backend, **options)
    points = [point.copy()]
    for _ in range(surface.steps if steps is None else steps):
        _, grad = surface.value_and_grad(point)
        opt.step([grad])
        if not np.all(np.isfinite(point)) or np.abs(point).max() > ESCAPE:
            break
        points.append(point.copy())
    return np.array(points)


def on_plot(surface: Surface, points: np.ndarray, margin: float = 0.02) -> bool:
    """Every point inside the plotted box (``margin`` of its width in from each edge, so no path runs
    along a frame), and the run did not diverge."""
    (x0, x1), (y0, y1) = surface.xlim, surface.ylim
    dx, dy = margin * (x1 - x0), margin * (y1 - y0)
    x0, x1, y0, y1 = x0 + dx, x1 - dx, y0 + dy, y1 - dy
    finished = len(points) == surface.steps + 1
    return finished and bool(np.all((points[:, 0] >= x0) & (points[:, 0] <= x1)
                                    & (points[:, 1] >= y0) & (points[:, 1] <= y1)))


def choose_lr(surface: Surface, name: str, backend: str) -> tuple[float, np.ndarray]:
    """The lr of :data:`LR_GRID` with the lowest final value among those whose path stays on the
    plot (the smallest lr if none does), and its path."""
    best = None
    for lr in LR_GRID:
        points = path(surface, name, lr, backend)
        if on_plot(surface, points):
            final = surface.value_and_grad(points[-1])[0]
            if best is None or final < best[0]:
                best = (final, lr, points)
    if best is None:
        return LR_GRID[0], path(surface, name, LR_GRID[0], backend)
    return best[1], best[2]


def chosen_paths(surface: Surface, backend: str, names=OPTIMIZERS) -> dict[str, tuple[float, np.ndarray]]:
    return {name: choose_lr(surface, name, backend) for name in names}


def _contour_grid(surface: Surface, n: int = 240):
    xs = np.linspace(*surface.xlim, n)
    ys = np.linspace(*surface.ylim, n)
    gx, gy = np.meshgrid(xs, ys)
    return gx, gy, surface.value(gx, gy)


def small_multiples(surface: Surface, paths: dict[str, tuple[float, np.ndarray]], out) -> object:
    """One panel per optimizer on the same axes; returns the saved PNG's path."""
    gx, gy, values = _contour_grid(surface)
    ncols = 5
    nrows = math.ceil(len(paths) / ncols)
    figure, axes = new_figure(ncols=ncols, nrows=nrows, width=3.0, height=3.0 * np.ptp(surface.ylim) / np.ptp(surface.xlim) + 0.4)
    for ax, (name, (lr, points)) in zip(axes, paths.items()):
        ax.contour(gx, gy, values, levels=surface.levels, colors="0.8", linewidths=0.7)
        colour = COLOURS.get(name, "#333333")
        ax.plot(points[:, 0], points[:, 1], "-", color=colour, lw=1.4)
        ax.plot(points[:, 0], points[:, 1], ".", color=colour, ms=2.0, alpha=0.5)
        ax.plot(*surface.start, "o", color="k", ms=5, label="start")
        for minimum in surface.minima:
            ax.plot(*minimum, "*", color="k", ms=11, label="minimum" if minimum == surface.minima[0] else None)
        final = surface.value_and_grad(points[-1])[0]
        ax.set(xlim=surface.xlim, ylim=surface.ylim, aspect="equal", xticks=[], yticks=[])
        ax.set_title(f"{name}, lr {lr:.2g}\nf after {len(points) - 1} steps: {final - surface.minimum_value():.2g}",
                     fontsize="small")
    for ax in axes[len(paths):]:
        ax.set_visible(False)
    axes[0].legend(fontsize="x-small", loc="lower left")
    figure.suptitle(f"{surface.formula}: each optimizer at the lr from the shared grid "
                    f"({LR_GRID[0]:g} ... {LR_GRID[-1]:g}, half decades) that gets lowest while staying on the plot "
                    f"({surface.steps} steps; 'f' is above the minimum)", fontsize="medium")
    return save_figure(figure, out)


# --- data for the page ---------------------------------------------------------------------------


SCALE = 1000  # points travel to the page in thousandths (the plot is ~500 px across ~4 units)


def _encoded(points: np.ndarray) -> list[int]:
    """Points as integers ``[x0, y0, dx1, dy1, ...]``: the first point, then each step's change, in
    thousandths. Steps are small, so the changes are short numbers: the page stays a few MB.
    The page's ``decode`` adds them back up."""
    if not len(points):
        return []
    ticks = np.round(np.asarray(points, dtype=np.float64) * SCALE).astype(np.int64)
    return np.vstack([ticks[:1], np.diff(ticks, axis=0)]).ravel().tolist()


def decode(encoded: list[int]) -> np.ndarray:
    """The inverse of :func:`_encoded` (for the tests; the page does the same in JavaScript)."""
    return np.cumsum(np.asarray(encoded, dtype=np.int64).reshape(-1, 2), axis=0) / SCALE


def _contours_svg(surface: Surface) -> list[list[float]]:
    """Contour lines as polylines in data coordinates (matplotlib's contour generator, no figure)."""
    import contourpy

    gx, gy, values = _contour_grid(surface, n=160)
    generator = contourpy.contour_generator(gx, gy, values)
    lines = []
    for level in surface.levels:
        for line in generator.lines(level):
            if len(line) > 2:
                lines.append(np.round(line[:: max(len(line) // 120, 1)], 3).ravel().tolist())
    return lines


def _surface_json(surface: Surface) -> dict:
    return {"name": surface.name, "formula": surface.formula, "js": surface.js, "xlim": surface.xlim,
            "ylim": surface.ylim, "start": surface.start, "minima": surface.minima, "steps": surface.steps,
            "fmin": surface.minimum_value(), "contours": _contours_svg(surface)}


def race_data(paths_by_surface: dict[str, dict[str, tuple[float, np.ndarray]]]) -> dict:
    """The chosen paths of every optimizer on each surface, for the animation."""
    return {
        "surfaces": {name: _surface_json(SURFACES[name]) for name in paths_by_surface},
        "runs": {surface: {name: {"lr": lr, "colour": COLOURS.get(name, "#333"), "points": _encoded(points)}
                           for name, (lr, points) in paths.items()}
                 for surface, paths in paths_by_surface.items()},
    }


# The playground: the hyperparameters a learner is told to tune, each at a few values.
PLAYGROUND = {
    "SGD+momentum": {"momentum": (0.0, 0.5, 0.9, 0.99)},
    "RMSprop": {"rho": (0.5, 0.9, 0.99, 0.999)},
    "Adam": {"beta1": (0.0, 0.5, 0.9, 0.99), "beta2": (0.9, 0.99, 0.999)},
}
PLAYGROUND_STEPS = 300


def _options(name: str, values: dict) -> dict:
    if name == "Adam":
        return {"betas": (values["beta1"], values["beta2"])}
    return dict(values)


def playground_data(backend: str, quick: bool = False) -> dict:
    """Paths for every (optimizer, lr, hyperparameter values) of :data:`PLAYGROUND` on both surfaces.

    ``runs[surface][optimizer]["i|j|k"]`` is the path at ``lr[i]`` and the j-th, k-th values of the
    optimizer's grid (in the order of :data:`PLAYGROUND`): the page's sliders move over indices. A
    path that diverged stops where it left the ``ESCAPE`` box (its length says when).
    """
    lr_grid = LR_GRID[::2] if quick else LR_GRID
    runs: dict = {}
    for surface in SURFACES.values():
        runs[surface.name] = {}
        for name, grid in PLAYGROUND.items():
            table = {}
            for indices in itertools.product(*(range(len(values)) for values in grid.values())):
                values = {key: grid[key][i] for key, i in zip(grid, indices)}
                for lr_index, lr in enumerate(lr_grid):
                    points = path(surface, name, lr, backend, steps=PLAYGROUND_STEPS, **_options(name, values))
                    table["|".join(map(str, (lr_index, *indices)))] = _encoded(points)
            runs[surface.name][name] = table
    return {
        "surfaces": {s.name: _surface_json(s) for s in SURFACES.values()},
        "lr": list(lr_grid),
        "default_lr": int(np.argmin([abs(math.log10(lr) + 1) for lr in lr_grid])),  # start at lr 0.1
        "grids": {name: {k: list(v) for k, v in grid.items()} for name, grid in PLAYGROUND.items()},
        "defaults": {"momentum": 0.9, "rho": 0.9, "beta1": 0.9, "beta2": 0.999},
        "colours": {name: COLOURS.get(name, "#333") for name in PLAYGROUND},
        "steps": PLAYGROUND_STEPS,
        "runs": runs,
    }


def html(race: dict, playground: dict) -> str:
    """The race and the playground as one HTML fragment (SVG drawn by inline JavaScript)."""
    data = json.dumps({"race": race, "playground": playground}, separators=(",", ":"))
    return f"""
<div class="interactive">
<h3 id="race">The race: every optimizer on the same surface</h3>
<p class="notes">Each at the learning rate chosen for the small multiples above; every point is a step of the
real optimizer (computed when this report was written). Press play, or drag the step slider.</p>
<div class="controls" id="race-controls">
  <label>surface <select id="race-surface"></select></label>
  <button type="button" id="race-play">play</button>
  <label>step <input type="range" id="race-step" min="0" max="1000" value="0"> <output id="race-step-out">0</output></label>
</div>
<svg class="plot" id="race-svg" viewBox="0 0 520 420" role="img" aria-label="animated optimizer paths"></svg>
<div class="legend" id="race-legend"></div>

<h3 id="playground">Playground: what lr, momentum, rho and the betas do</h3>
<p class="notes">Each slider setting switches to a path the real kernels computed at that value
({playground["steps"]} steps from the same start); nothing is simulated in the page. Left: the path; right:
the loss above the minimum, log scale.</p>
<div class="controls" id="play-controls">
  <label>surface <select id="play-surface"></select></label>
  <label>optimizer <select id="play-optimizer"></select></label>
  <label>lr <input type="range" id="play-lr" min="0" max="0" value="0"> <output id="play-lr-out"></output></label>
  <span id="play-sliders"></span>
</div>
<div class="playground">
<svg class="plot" id="play-svg" viewBox="0 0 520 420" role="img" aria-label="optimizer path"></svg>
<svg class="plot" id="play-loss" viewBox="0 0 520 420" role="img" aria-label="loss curve"></svg>
</div>
<p class="notes" id="play-note"></p>
<script type="application/json" id="trajectory-data">{data}</script>
<script>{SCRIPT}</script>
</div>"""


SCRIPT = r"""
(function () {
  const DATA = JSON.parse(document.getElementById("trajectory-data").textContent);
  // paths arrive as [x0, y0, dx1, dy1, ...] in thousandths (see _encoded): add the steps back up
  const decode = (d) => { const p = new Float64Array(d.length); let x = 0, y = 0;
    for (let i = 0; i < d.length; i += 2) { x += d[i]; y += d[i + 1]; p[i] = x / 1000; p[i + 1] = y / 1000; } return p; };
  for (const s in DATA.race.runs) for (const n in DATA.race.runs[s]) DATA.race.runs[s][n].points = decode(DATA.race.runs[s][n].points);
  const cache = new Map();
  const decoded = (d) => { if (!cache.has(d)) cache.set(d, decode(d)); return cache.get(d); };
  const NS = document.getElementById("race-svg").namespaceURI;  // SVG's, from an <svg> already in the page
  const W = 520, H = 420, PAD = 30;
  const el = (name, attrs, parent) => { const e = document.createElementNS(NS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]); if (parent) parent.appendChild(e); return e; };
  function frame(svg, surface) {
    // data -> pixel mapping with equal scales on both axes, centred in the box
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const [x0, x1] = surface.xlim, [y0, y1] = surface.ylim;
    const s = Math.min((W - 2 * PAD) / (x1 - x0), (H - 2 * PAD) / (y1 - y0));
    const ox = (W - s * (x1 - x0)) / 2, oy = (H - s * (y1 - y0)) / 2;
    const px = (x) => ox + s * (x - x0), py = (y) => H - oy - s * (y - y0);
    el("rect", {x: px(x0), y: py(y1), width: s * (x1 - x0), height: s * (y1 - y0), fill: "#fff", stroke: "#bbb"}, svg);
    for (const line of surface.contours) {
      let d = ""; for (let i = 0; i < line.length; i += 2) d += (i ? "L" : "M") + px(line[i]).toFixed(1) + "," + py(line[i + 1]).toFixed(1);
      el("path", {d: d, fill: "none", stroke: "#d5d5d5", "stroke-width": 1}, svg);
    }
    el("circle", {cx: px(surface.start[0]), cy: py(surface.start[1]), r: 5, fill: "#000"}, svg);
    for (const m of surface.minima) {
      const t = el("text", {x: px(m[0]), y: py(m[1]) + 6, "text-anchor": "middle", "font-size": 20}, svg);
      t.textContent = "★";
    }
    const caption = el("text", {x: 8, y: 16, "font-size": 12, fill: "#555"}, svg);
    caption.textContent = surface.formula + "   ● start   ★ minimum";
    const clip = (v, lo, hi) => Math.max(lo - 0.05 * (hi - lo), Math.min(hi + 0.05 * (hi - lo), v));
    return {px: (x) => px(clip(x, x0, x1)), py: (y) => py(clip(y, y0, y1))};
  }
  function polyline(points, upto, map) {
    let d = ""; const n = Math.min(points.length / 2, upto + 1);
    for (let i = 0; i < n; i++) d += (i ? "L" : "M") + map.px(points[2 * i]).toFixed(1) + "," + map.py(points[2 * i + 1]).toFixed(1);
    return d;
  }

  // --- the race ---
  const race = DATA.race;
  const raceSelect = document.getElementById("race-surface"), raceSvg = document.getElementById("race-svg");
  const raceStep = document.getElementById("race-step"), raceOut = document.getElementById("race-step-out");
  const playButton = document.getElementById("race-play");
  for (const name in race.surfaces) raceSelect.add(new Option(name, name));
  let raceMap, raceRuns, timer = null;
  function raceSetup() {
    const surface = race.surfaces[raceSelect.value];
    raceMap = frame(raceSvg, surface); raceRuns = [];
    const legend = document.getElementById("race-legend"); legend.textContent = "";
    for (const name in race.runs[raceSelect.value]) {
      const run = race.runs[raceSelect.value][name];
      const trail = el("path", {fill: "none", stroke: run.colour, "stroke-width": 1.6, opacity: 0.85}, raceSvg);
      const dot = el("circle", {r: 5, fill: run.colour, stroke: "#000", "stroke-width": 0.6}, raceSvg);
      raceRuns.push({run: run, trail: trail, dot: dot});
      const item = document.createElement("span");
      item.innerHTML = '<i style="background:' + run.colour + '"></i>' + name + " (lr " + run.lr.toPrecision(2) + ")";
      legend.appendChild(item);
    }
    raceStep.max = surface.steps; raceDraw(+raceStep.value);
  }
  function raceDraw(step) {
    raceOut.textContent = step;
    for (const r of raceRuns) {
      const p = r.run.points, k = Math.min(step, p.length / 2 - 1);
      r.trail.setAttribute("d", polyline(p, k, raceMap));
      r.dot.setAttribute("cx", raceMap.px(p[2 * k])); r.dot.setAttribute("cy", raceMap.py(p[2 * k + 1]));
    }
  }
  function stop() { if (timer) clearInterval(timer); timer = null; playButton.textContent = "play"; }
  playButton.addEventListener("click", () => {
    if (timer) { stop(); return; }
    if (+raceStep.value >= +raceStep.max) raceStep.value = 0;
    playButton.textContent = "pause";
    const stride = Math.max(1, Math.round(raceStep.max / 300));
    timer = setInterval(() => {
      const next = Math.min(+raceStep.max, +raceStep.value + stride); raceStep.value = next; raceDraw(next);
      if (next >= +raceStep.max) stop();
    }, 30);
  });
  raceStep.addEventListener("input", () => { stop(); raceDraw(+raceStep.value); });
  raceSelect.addEventListener("change", () => { stop(); raceStep.value = 0; raceSetup(); });
  raceSetup();

  // --- the playground ---
  const play = DATA.playground;
  const surfaceSelect = document.getElementById("play-surface"), optimizerSelect = document.getElementById("play-optimizer");
  const lrInput = document.getElementById("play-lr"), lrOut = document.getElementById("play-lr-out");
  const sliders = document.getElementById("play-sliders"), note = document.getElementById("play-note");
  for (const name in play.surfaces) surfaceSelect.add(new Option(name, name));
  for (const name in play.grids) optimizerSelect.add(new Option(name, name));
  optimizerSelect.value = "Adam";
  lrInput.max = play.lr.length - 1; lrInput.value = play.default_lr;
  let inputs = {};
  function buildSliders() {
    sliders.textContent = ""; inputs = {};
    const grid = play.grids[optimizerSelect.value];
    for (const key in grid) {
      const label = document.createElement("label");
      const input = document.createElement("input"); input.type = "range"; input.min = 0; input.max = grid[key].length - 1;
      input.value = Math.max(0, grid[key].indexOf(play.defaults[key]));
      const out = document.createElement("output");
      label.append(key + " ", input, " ", out); sliders.appendChild(label);
      input.id = "play-" + key;
      input.addEventListener("input", draw); inputs[key] = [input, out, grid[key]];
    }
  }
  const fmt = (v) => (v >= 0.01 || v === 0) ? String(+v.toPrecision(3)) : v.toExponential(1);
  function draw() {
    const surface = play.surfaces[surfaceSelect.value], name = optimizerSelect.value;
    const lr = play.lr[+lrInput.value]; lrOut.textContent = fmt(lr);
    const indices = [+lrInput.value];
    for (const key in inputs) { const [input, out, grid] = inputs[key]; out.textContent = fmt(grid[+input.value]); indices.push(+input.value); }
    const points = decoded(play.runs[surfaceSelect.value][name][indices.join("|")]);
    const map = frame(document.getElementById("play-svg"), surface);
    el("path", {d: polyline(points, points.length / 2, map), fill: "none", stroke: play.colours[name], "stroke-width": 1.8}, document.getElementById("play-svg"));
    lossCurve(surface, points);
    const n = points.length / 2 - 1;
    note.textContent = n < play.steps ? name + " diverged after " + n + " steps at these settings (the path stops where it left the plot by far)."
      : name + ": " + play.steps + " steps; f above the minimum at the end: " + fmt(Math.max(f(surface, points[2 * n], points[2 * n + 1]) - surface.fmin, 0)) + ".";
  }
  const fns = {};
  function f(surface, x, y) { if (!fns[surface.name]) fns[surface.name] = new Function("x", "y", "return " + surface.js + ";"); return fns[surface.name](x, y); }
  function lossCurve(surface, points) {
    const svg = document.getElementById("play-loss"); while (svg.firstChild) svg.removeChild(svg.firstChild);
    const n = points.length / 2, lo = -8, hi = 4;   // log10 of f - f_min, clipped to [1e-8, 1e4]
    const X = (i) => 50 + (W - 70) * i / play.steps, Y = (v) => H - 40 - (H - 70) * (Math.min(hi, Math.max(lo, v)) - lo) / (hi - lo);
    el("rect", {x: 50, y: 30, width: W - 70, height: H - 70, fill: "#fff", stroke: "#bbb"}, svg);
    for (let e = lo; e <= hi; e += 2) {
      el("line", {x1: 50, x2: W - 20, y1: Y(e), y2: Y(e), stroke: "#eee"}, svg);
      const t = el("text", {x: 46, y: Y(e) + 4, "text-anchor": "end", "font-size": 11, fill: "#555"}, svg); t.textContent = "1e" + e;
    }
    const label = el("text", {x: 50, y: 20, "font-size": 12, fill: "#555"}, svg); label.textContent = "f - f_min (log scale) against step";
    const axis = el("text", {x: W - 20, y: H - 12, "text-anchor": "end", "font-size": 11, fill: "#555"}, svg); axis.textContent = "step " + play.steps;
    let d = "";
    for (let i = 0; i < n; i++) d += (i ? "L" : "M") + X(i).toFixed(1) + "," + Y(Math.log10(Math.max(f(surface, points[2 * i], points[2 * i + 1]) - surface.fmin, 1e-12))).toFixed(1);
    el("path", {d: d, fill: "none", stroke: play.colours[optimizerSelect.value], "stroke-width": 1.8}, svg);
  }
  surfaceSelect.addEventListener("change", draw);
  optimizerSelect.addEventListener("change", () => { buildSliders(); draw(); });
  lrInput.addEventListener("input", draw);
  buildSliders(); draw();
})();
"""
