"""``python -m fastopt dashboard``: the asv dashboard of the installed build, served offline.

What it does, in the order a newcomer would otherwise have to find out by trial:

1. **Run** a chosen subset of the asv suite (``benchmarks/``) against the fastopt this Python
   has installed (``asv run --python=same``). On its own that saves nothing (asv keeps results
   only for builds it made itself), so the run is recorded under the checkout's commit hash
   (``--set-commit-hash``): that is what makes ``asv publish`` draw anything.
2. **Publish** the static pages (``asv publish``).
3. **Make them work offline.** asv 0.6's ``index.html`` loads jQuery, Flot, Bootstrap and three
   small libraries from public CDNs; with no internet the page shows only asv's "failed to load"
   error. The same libraries ship inside fastopt (``vendor/``, with their licences in
   ``vendor/LICENSES.md``) and each CDN tag is pointed at the local copy.
4. **Serve** the pages on 127.0.0.1 (``file://`` does not work: the pages fetch their JSON).

asv writes only under the output folder (default ``<checkout>/.asv/dashboard``): its config,
results, html and a machine file, so the user's ``~/.asv-machine.json`` is neither needed nor
touched. The benchmarks come from the checkout, so this command needs a git checkout of fastopt
(an editable install is the usual case); ``--repo`` points at one.

Each optimizer's kernel benchmark (``bench_kernels.TimeAdam.time_kernel`` ...) is one graph with
the three backends as three lines against the array size; :func:`backend_links` builds those
links, and the command prints them.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import re
import socket
import subprocess
import sys
from importlib import resources
from pathlib import Path

DEFAULT_BENCH = r"bench_kernels\.Time\w+\.time_kernel\(.*, (4096|262144|4194304), 'float32'\)"
"""The kernel alone, every optimizer and backend, float32, from L1-sized to L3-sized arrays: about
90 combinations, a few minutes. The largest size (33.5M elements, main memory) and ``time_step``
are left out; pass ``--bench`` to choose others (asv's regular expressions, matched against names
with their parameters, e.g. ``bench_kernels.TimeAdam.time_kernel('numba', 4096, 'float32')``)."""

MACHINE = "fastopt-dashboard"
"""The machine name results are filed under (asv groups results by machine)."""

# asv 0.6's CDN URLs, matched by the file name at their end -> fastopt's local copy in vendor/.
VENDORED = {
    "jquery-3.3.1.min.js": "jquery-3.3.1.min.js",
    "jquery.flot.min.js": "jquery.flot-0.8.3.min.js",
    "jquery.flot.time.min.js": "jquery.flot-0.8.3.time.min.js",
    "jquery.flot.selection.min.js": "jquery.flot-0.8.3.selection.min.js",
    "jquery.flot.categories.min.js": "jquery.flot-0.8.3.categories.min.js",
    "jquery.flot.orderBars.js": "jquery.flot.orderBars.js",
    "stupidtable.min.js": "stupidtable.js",
    "md5.min.js": "md5.js",
    "bootstrap.min.js": "bootstrap-3.1.0.min.js",
    "bootstrap.min.css": "bootstrap-3.1.0.min.css",
}
VENDOR_FOLDER = "vendor"  # inside the published html folder, next to index.html

# A tag that loads a script or a stylesheet from the network: <script src="https://..."> or
# <link ... href="https://...">. Links a reader clicks (<a href="https://...">) are not loads.
_REMOTE_LOAD = re.compile(
    r"""<(?P<tag>script|link)\b(?P<attrs>[^>]*?)\b(?P<attr>src|href)=["'](?P<url>(?:https?:)?//[^"']+)["'](?P<rest>[^>]*)>""",
    re.IGNORECASE,
)


class DashboardError(RuntimeError):
    """A step failed; the message says which and what to do."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bench", "-b", action="append", metavar="REGEX",
                        help="asv benchmark regular expression (repeatable); default: every "
                        "optimizer's kernel, 3 backends x 3 sizes, float32")
    parser.add_argument("--repo", type=Path, default=None,
                        help="the fastopt checkout (asv.conf.json and benchmarks/); default: found "
                        "from the current folder or from the installed package")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for asv's config, results and html (default <repo>/.asv/dashboard)")
    parser.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (default 8080, or the next free one)")
    parser.add_argument("--no-serve", action="store_true", help="run and publish, then stop (print where the pages are)")
    parser.add_argument("--no-run", action="store_true", help="publish and serve the results already saved")
    parser.add_argument("--repeat", default=None, metavar="SPEC",
                        help="override asv's samples per benchmark, e.g. '1' or '(1, 3, 0.5)' (quicker, noisier)")


def run(args: argparse.Namespace) -> int:
    try:
        repo = find_repo(args.repo)
        out = (args.out or repo / ".asv" / "dashboard").resolve()
        commit = commit_hash(repo)
        config = write_config(repo, out)
        warn_about_the_build(repo)
        if not args.no_run:
            run_benchmarks(config, out, commit, args.bench or [DEFAULT_BENCH], args.repeat)
        html = publish(config, out)
    except DashboardError as exc:
        print(f"python -m fastopt dashboard: {exc}", file=sys.stderr)
        return 1
    if args.no_serve:
        print(f"dashboard written to {html / 'index.html'} (serve the folder over http: it fetches its JSON)")
        return 0
    serve(html, args.port)
    return 0


# --- finding the checkout ------------------------------------------------------------------------


def find_repo(explicit: Path | None) -> Path:
    """The checkout holding ``asv.conf.json`` and ``benchmarks/``."""
    candidates = [explicit] if explicit else [Path.cwd(), Path(__file__).resolve().parents[3]]
    for start in candidates:
        for folder in (start.resolve(), *start.resolve().parents):
            if (folder / "asv.conf.json").is_file() and (folder / "benchmarks").is_dir():
                return folder
            if explicit:
                break
    where = explicit or "the current folder or the installed package"
    raise DashboardError(f"no asv.conf.json with a benchmarks/ folder in {where}: the dashboard runs the "
                         "checkout's asv suite, so run it from a git checkout of fastopt or pass --repo")


def _git(repo: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise DashboardError(f"git {' '.join(args)} failed in {repo} ({exc}); asv files results by commit, "
                             "so the checkout must be a git repository") from None
    return done.stdout.strip()


def commit_hash(repo: Path) -> str:
    return _git(repo, "rev-parse", "HEAD")


def branch_name(repo: Path) -> str:
    """The branch asv draws the results on: the checked-out one (``HEAD`` when detached)."""
    return _git(repo, "rev-parse", "--abbrev-ref", "HEAD")


def warn_about_the_build(repo: Path) -> None:
    """asv measures the fastopt this Python imports: say so if that is not the checkout's code."""
    import fastopt

    installed = Path(fastopt.__file__).resolve().parent
    if not installed.is_relative_to(repo):
        print(f"note: the installed fastopt ({installed}) is not the checkout's ({repo / 'fastopt'}); "
              "the results are filed under the checkout's commit but measure the installed build")
    elif _git(repo, "status", "--porcelain", "--", "fastopt"):
        print("note: fastopt/ has uncommitted changes; the results are filed under HEAD but measure the "
              "working tree (rebuild the Cython kernels first if a .pyx changed)")


# --- asv -----------------------------------------------------------------------------------------


def write_config(repo: Path, out: Path) -> Path:
    """An asv config for this run: the checkout's suite, everything asv writes under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    config = {
        "version": 1,
        "project": "fastopt",
        "project_url": "",
        "repo": str(repo),
        "dvcs": "git",
        "branches": [branch_name(repo)],
        "environment_type": "virtualenv",
        "benchmark_dir": str(repo / "benchmarks"),
        "env_dir": str(out / "env"),
        "results_dir": str(out / "results"),
        "html_dir": str(out / "html"),
    }
    path = out / "asv.conf.json"
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path


def _asv(config: Path, out: Path, *args: str) -> None:
    """Run asv with this run's config; its machine file lives in ``out`` (HOME points there)."""
    env = {**os.environ, "HOME": str(out)}  # asv reads and writes ~/.asv-machine.json
    command = [sys.executable, "-m", "asv", "--config", str(config), *args]
    print("$", " ".join(command[2:]), flush=True)
    try:
        done = subprocess.run(command, env=env, cwd=config.parent)
    except OSError as exc:
        raise DashboardError(f"could not start asv ({exc})") from None
    if done.returncode:
        raise DashboardError(f"`asv {args[0]}` exited with {done.returncode} (its output is above); "
                             "is asv installed? pip install -e \".[bench]\"")


def run_benchmarks(config: Path, out: Path, commit: str, patterns: list[str], repeat: str | None) -> None:
    try:
        import asv  # noqa: F401
    except ImportError:
        raise DashboardError("asv is not installed: pip install -e \".[bench]\" (asv and virtualenv)") from None
    _asv(config, out, "machine", "--yes", "--machine", MACHINE)
    args = ["run", "--python=same", "--set-commit-hash", commit, "--machine", MACHINE, "--show-stderr"]
    for pattern in patterns:
        args += ["--bench", pattern]
    if repeat:
        args += ["--attribute", f"repeat={repeat}"]
    _asv(config, out, *args)


def publish(config: Path, out: Path) -> Path:
    results = out / "results" / MACHINE
    if not results.is_dir() or not any(p.name != "machine.json" for p in results.glob("*.json")):
        raise DashboardError(f"no results in {results} to publish: run without --no-run first")
    _asv(config, out, "publish")
    html = out / "html"
    serve_scripts_locally(html)
    return html


def serve_scripts_locally(html: Path) -> list[str]:
    """Point every CDN script and stylesheet of the published pages at fastopt's vendored copy.

    Returns the URLs replaced. Raises :class:`DashboardError` if a page loads something from the
    network that has no local copy (a newer asv asking for another library): better a clear
    error here than a page that fails offline.
    """
    vendor = html / VENDOR_FOLDER
    vendor.mkdir(exist_ok=True)
    source = resources.files(__name__).joinpath(VENDOR_FOLDER)
    for entry in source.iterdir():
        if entry.name.endswith((".js", ".css")):
            (vendor / entry.name).write_bytes(entry.read_bytes())
    replaced, missing = [], []
    for page in html.glob("*.html"):
        text = page.read_text(encoding="utf-8")

        def local(match: re.Match) -> str:
            url = match["url"]
            name = url.split("?")[0].rsplit("/", 1)[-1]
            if name not in VENDORED:
                missing.append(url)
                return match[0]
            replaced.append(url)
            # the same tag without the CDN's integrity attributes (they pin the remote copy)
            if match["tag"].lower() == "script":
                return f'<script src="{VENDOR_FOLDER}/{VENDORED[name]}">'
            return f'<link rel="stylesheet" href="{VENDOR_FOLDER}/{VENDORED[name]}">'

        page.write_text(_REMOTE_LOAD.sub(local, text), encoding="utf-8")
    if missing:
        raise DashboardError("the published pages load these from the network and fastopt has no local "
                             f"copy: {', '.join(sorted(set(missing)))} (a newer asv?); see "
                             "fastopt/cli/dashboard/vendor/LICENSES.md")
    return replaced


def remote_loads(text: str) -> list[str]:
    """The URLs a page's ``<script>`` and ``<link>`` tags load from the network (for the tests)."""
    return [m["url"] for m in _REMOTE_LOAD.finditer(text)]


def backend_links(html: Path, base: str) -> dict[str, str]:
    """{optimizer: URL of its kernel graph: the three backends as three lines against the array size,
    float32, log time axis (asv keeps these choices in the URL)}."""
    try:
        benchmarks = json.loads((html / "index.json").read_text(encoding="utf-8"))["benchmarks"]
    except (OSError, ValueError, KeyError):
        return {}
    links = {}
    for name in sorted(benchmarks):
        found = re.fullmatch(r"bench_kernels\.Time(\w+)\.time_kernel", name)
        if found:
            links[found[1]] = f"{base}#{name}?x-axis=size&dtype=float32&y-axis-scale=log"
    return links


# --- serving -------------------------------------------------------------------------------------


def free_port(preferred: int) -> int:
    """``preferred`` if it is free on 127.0.0.1, else the next free one among the following 50."""
    for port in range(preferred, preferred + 50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise DashboardError(f"no free port on 127.0.0.1 from {preferred} to {preferred + 49}")


def make_server(html: Path, port: int) -> http.server.ThreadingHTTPServer:
    """A static file server for ``html`` on 127.0.0.1 only (never on the network's interfaces)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:  # one line per request would bury the links
            pass

    handler = functools.partial(Quiet, directory=str(html))
    return http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)


def serve(html: Path, port: int) -> None:
    server = make_server(html, free_port(port))
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    print(f"\nfastopt dashboard: {base}  (Ctrl-C to stop; no internet needed)")
    links = backend_links(html, base)
    if links:
        print("each optimizer's kernel, reference / numba / cython side by side against the array size:")
        width = max(map(len, links))
        for optimizer, url in links.items():
            print(f"  {optimizer:<{width}}  {url}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("\nstopped")
    finally:
        server.server_close()
