"""Headless Chromium from Python, for checking pages as a reader's browser shows them.

Used by the tests (the dashboard loads its scripts with no network; the report and the ``show``
pages fit a 400 px phone) and by ``docs/screenshots.py``. Needs Debian's ``chromium`` package
(``apt-get install chromium``) or any Chrome/Chromium on PATH; :func:`find_chromium` returns
``None`` without one, and callers skip.

Chromium's command line is enough, no driver: ``--dump-dom`` prints the page after its scripts
ran, ``--screenshot`` writes a PNG, and ``--log-net-log`` records every request the browser made.
Every run resolves only 127.0.0.1 (any other host fails to resolve, so nothing leaves the machine)
and turns off the browser's own background traffic (updates, sync, accounts).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")

FLAGS = [
    "--headless",
    "--no-sandbox",  # root in CI containers: Chromium refuses to start sandboxed as root
    "--disable-gpu",
    "--hide-scrollbars",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--no-pings",
    "--disable-features=Translate,OptimizationHints,AutofillServerCommunication,MediaRouter,SpellCheck",
    # Only 127.0.0.1 resolves: a page that reaches for a CDN gets a DNS error, and no packet leaves.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]


def find_chromium() -> str | None:
    for name in NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageLoad:
    dom: str  # the document after its scripts ran
    requests: list[str]  # every URL the page itself asked for (the browser's own traffic left out)


def _run(arguments: list[str], timeout: float) -> subprocess.CompletedProcess:
    binary = find_chromium()
    if binary is None:
        raise FileNotFoundError("no Chromium on PATH (apt-get install chromium)")
    # not the test run's LD_PRELOAD (CI's AddressSanitizer pass preloads libasan into Python only)
    env = {key: value for key, value in os.environ.items() if key != "LD_PRELOAD"}
    with tempfile.TemporaryDirectory(prefix="fastopt-chromium-") as profile:
        return subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}", *arguments],
                              capture_output=True, text=True, timeout=timeout, env=env)


def load(url: str, wait_ms: int = 5000, timeout: float = 120) -> PageLoad:
    """Open ``url``, let its scripts run for ``wait_ms`` of virtual time; the DOM and its requests."""
    with tempfile.TemporaryDirectory(prefix="fastopt-netlog-") as folder:
        net_log = Path(folder) / "net.json"
        done = _run([f"--log-net-log={net_log}", f"--virtual-time-budget={wait_ms}", "--dump-dom", url], timeout)
        requests = page_requests(net_log.read_text(encoding="utf-8")) if net_log.exists() else []
    return PageLoad(done.stdout, requests)


def page_requests(net_log: str) -> list[str]:
    """The URLs requested on behalf of a page, from a Chromium net log (JSON).

    Each request the page makes starts a job whose ``network_isolation_key`` names the page's
    site; the browser's own requests (component updates, accounts) carry ``null`` or their own
    service's site, and an ``initiator`` that is "not an origin". Those are left out.
    """
    try:
        log = json.loads(net_log)
    except ValueError:  # Chromium was killed before it closed the JSON: drop the last partial event
        log = json.loads(net_log[: net_log.rfind("},") + 1] + "]}")
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = []
    for event in log["events"]:
        params = event.get("params", {})
        if event["type"] == start_job and params.get("initiator", "not an origin") != "not an origin":
            urls.append(params["url"])
    return urls


def screenshot(url: str, path: Path, width: int, height: int, wait_ms: int = 3000, timeout: float = 120) -> Path:
    """A PNG of ``url`` as a window ``width`` x ``height`` px shows it (scrolled to ``#anchor`` if given).

    A local file with an anchor is shown in a frame of that size: Chromium's ``--screenshot``
    does not scroll to a file's anchor, a frame does.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not (url.startswith("file:") and "#" in url):  # a served page: its "#..." is a route its scripts read
        done = _run([f"--window-size={width},{height}", f"--virtual-time-budget={wait_ms}",
                     f"--screenshot={path.resolve()}", url], timeout)
        if not path.exists():
            raise RuntimeError(f"Chromium wrote no screenshot of {url}: {done.stderr[-2000:]}")
        return path
    with tempfile.TemporaryDirectory(prefix="fastopt-screenshot-") as folder:
        frame = Path(folder) / "frame.html"
        frame.write_text(f'<!DOCTYPE html><html><body style="margin:0"><iframe src={json.dumps(url)} '
                         f'style="border:0;width:{width}px;height:{height}px"></iframe></body></html>', encoding="utf-8")
        done = _run([f"--window-size={width},{height}", "--allow-file-access-from-files",
                     f"--virtual-time-budget={wait_ms}", f"--screenshot={path.resolve()}", frame.as_uri()], timeout)
    if not path.exists():
        raise RuntimeError(f"Chromium wrote no screenshot of {url}: {done.stderr[-2000:]}")
    return path


def page_metrics(url: str, width: int, wait_ms: int = 3000, timeout: float = 120) -> dict:
    """Layout facts of ``url`` at a window ``width`` px wide, measured by the page's own DOM.

    A script appended to the document after load writes a JSON object into ``<body data-metrics>``
    which :func:`load`'s ``--dump-dom`` then prints. See :data:`METRICS_SCRIPT` for the keys.
    """
    with tempfile.TemporaryDirectory(prefix="fastopt-metrics-") as folder:
        page = Path(folder) / "metrics.html"
        page.write_text(_METRICS_FRAME.format(url=json.dumps(url), width=width), encoding="utf-8")
        done = _run([f"--window-size={width},900", "--allow-file-access-from-files",
                     f"--virtual-time-budget={wait_ms}", "--dump-dom", page.as_uri()], timeout)
    start = done.stdout.find("METRICS:{")  # the script's own text has "METRICS:" followed by a quote
    if start < 0:
        raise RuntimeError(f"no metrics from {url}: {done.stdout[-500:]} {done.stderr[-1500:]}")
    return json.loads(done.stdout[start + len("METRICS:"): done.stdout.index(":END", start)])


# The page under test in an iframe of the given width (same origin: both file://), measured from
# outside once it has loaded. Keys:
#   scroll_width     the document's width; > width means the whole page scrolls sideways
#   height           the document's height
#   viewport_tag     whether it has <meta name="viewport">
#   wide_blocks      elements wider than the window that are not inside a horizontal scroller
#   overlaps         pairs of tables / code panels / figures whose boxes overlap
#   narrowest_code   the narrowest code line box (px): a column squeezed to a few characters shows here
_METRICS_FRAME = """<!DOCTYPE html><html><body style="margin:0">
<iframe id="f" src={url} style="border:0;width:{width}px;height:900px"></iframe>
<script>
document.getElementById("f").addEventListener("load", function () {{
  setTimeout(function () {{
    const d = this.contentDocument, w = this.contentWindow;
    const scrolls = (el) => {{ for (let e = el.parentElement; e; e = e.parentElement) {{
        const s = w.getComputedStyle(e).overflowX; if (s === "auto" || s === "scroll") return true; }} return false; }};
    const wide = [];
    d.querySelectorAll("body *").forEach((el) => {{
      const r = el.getBoundingClientRect();
      if (r.right > {width} + 1 && r.width > 0 && !scrolls(el) && w.getComputedStyle(el).position !== "fixed")
        wide.push(el.tagName.toLowerCase() + (el.className ? "." + String(el.className).split(" ")[0] : ""));
    }});
    const boxes = Array.from(d.querySelectorAll("table, pre, img, .code-grid, .panel, svg.plot, canvas"))
      .filter((el) => !el.closest("details:not([open])"))
      .map((el) => [el, el.getBoundingClientRect()]).filter(([, r]) => r.width > 0 && r.height > 0);
    const overlaps = [];
    for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {{
      const [a, ra] = boxes[i], [b, rb] = boxes[j];
      if (a.contains(b) || b.contains(a)) continue;
      const x = Math.min(ra.right, rb.right) - Math.max(ra.left, rb.left);
      const y = Math.min(ra.bottom, rb.bottom) - Math.max(ra.top, rb.top);
      if (x > 2 && y > 2) overlaps.push(a.tagName + "/" + b.tagName);
    }}
    const code = Array.from(d.querySelectorAll(".line .src, pre")).map((el) => el.getBoundingClientRect().width)
      .filter((x) => x > 0);
    const out = {{scroll_width: d.documentElement.scrollWidth, height: d.documentElement.scrollHeight,
      viewport_tag: !!d.querySelector('meta[name="viewport"]'), wide_blocks: wide.slice(0, 20),
      overlaps: overlaps.slice(0, 20), narrowest_code: code.length ? Math.min(...code) : null}};
    const p = document.createElement("pre"); p.textContent = "METRICS:" + JSON.stringify(out) + ":END";
    document.body.appendChild(p);
  }}.bind(this), 500);
}});
</script></body></html>"""
