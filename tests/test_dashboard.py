"""``python -m fastopt dashboard``: results saved under the commit, pages that work with no network.

The end-to-end tests run a three-benchmark subset of the asv suite (one sample each) against this
installation, publish it, serve it on 127.0.0.1 and open it in headless Chromium, which can
resolve no host but 127.0.0.1. They check every request the page made (Chromium's net log), and,
as a control that the check can fail, that asv's own unpatched page is caught asking for CDNs.
"""

import re
import shutil
import threading
from importlib import resources
from pathlib import Path

import pytest

from fastopt import cli
from fastopt.cli import _chromium, dashboard

REPO = Path(__file__).resolve().parents[1]
SUBSET = r"bench_kernels\.TimeSGD\.time_kernel\(.*, 4096, 'float32'\)"  # 3 backends, one size


def asv_index_html() -> str:
    pytest.importorskip("asv")
    return resources.files("asv").joinpath("www", "index.html").read_text(encoding="utf-8")


def test_every_cdn_load_of_asvs_page_gets_a_local_copy(tmp_path):
    (tmp_path / "index.html").write_text(asv_index_html(), encoding="utf-8")
    before = dashboard.remote_loads((tmp_path / "index.html").read_text(encoding="utf-8"))
    assert len(before) >= 10  # jQuery, Flot and plugins, Bootstrap (js and css), md5, stupidtable
    replaced = dashboard.serve_scripts_locally(tmp_path)
    after = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert sorted(replaced) == sorted(before) and dashboard.remote_loads(after) == []
    local = re.findall(r'(?:src|href)="(vendor/[^"]+)"', after)
    assert len(local) == len(before) and all((tmp_path / name).is_file() for name in local)
    assert "github.com/airspeed-velocity" in after  # a link a reader clicks is not a load: left alone


def test_a_library_without_a_local_copy_is_an_error(tmp_path):
    (tmp_path / "index.html").write_text('<script src="https://cdn.example.org/newlib.min.js"></script>')
    with pytest.raises(dashboard.DashboardError, match="newlib"):
        dashboard.serve_scripts_locally(tmp_path)


def test_vendored_files_and_their_licences_ship_with_the_package():
    vendor = resources.files("fastopt.cli.dashboard").joinpath("vendor")
    names = {entry.name for entry in vendor.iterdir()}
    assert set(dashboard.VENDORED.values()) <= names
    licences = vendor.joinpath("LICENSES.md").read_text(encoding="utf-8")
    assert all(f"`{name}`" in licences for name in dashboard.VENDORED.values())


def test_no_checkout_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["dashboard", "--repo", str(tmp_path), "--no-serve"]) == 1
    assert "asv.conf.json" in capsys.readouterr().err


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    pytest.importorskip("asv")
    if not (REPO / ".git").exists() or not (REPO / "benchmarks").is_dir():
        pytest.skip("needs the git checkout (asv files results by commit)")
    out = tmp_path_factory.mktemp("dashboard")
    code = cli.main(["dashboard", "--repo", str(REPO), "--out", str(out), "--no-serve", "-b", SUBSET, "--repeat", "1"])
    assert code == 0
    return out


def test_results_are_saved_under_the_commit_hash_and_published(published):
    import json

    commit = dashboard.commit_hash(REPO)
    saved = [p for p in (published / "results" / dashboard.MACHINE).glob("*.json") if p.name != "machine.json"]
    assert [p.name[:8] for p in saved] == [commit[:8]]
    results = json.loads(saved[0].read_text())
    assert results["commit_hash"] == commit
    index = json.loads((published / "html" / "index.json").read_text())
    assert index["benchmarks"]["bench_kernels.TimeSGD.time_kernel"]["params"][0] == ["'reference'", "'numba'", "'cython'"]
    graphs = list((published / "html" / "graphs").rglob("bench_kernels.TimeSGD.time_kernel.json"))
    assert graphs and all(json.loads(g.read_text()) for g in graphs)  # points, not an empty graph


@pytest.fixture
def served():
    """Serve folders on 127.0.0.1 (an ephemeral port) for one test; yields a function folder -> URL."""
    servers = []

    def serve(folder: Path) -> str:
        server = dashboard.make_server(folder, 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


needs_chromium = pytest.mark.skipif(_chromium.find_chromium() is None, reason="no Chromium (apt-get install chromium)")


@needs_chromium
def test_published_page_loads_every_script_from_127_0_0_1(published, served):
    base = served(published / "html")
    page = _chromium.load(base + "#bench_kernels.TimeSGD.time_kernel?x-axis=size&dtype=float32")
    assert any(url.endswith("vendor/jquery-3.3.1.min.js") for url in page.requests), page.requests
    assert [url for url in page.requests if not url.startswith(base)] == []
    assert 'class="flot-base"' in page.dom  # Flot ran and drew the graph: the scripts loaded and worked
    assert "TimeSGD" in page.dom


@needs_chromium
def test_the_network_check_catches_asvs_own_page(published, served, tmp_path):
    unpatched = tmp_path / "html"
    shutil.copytree(published / "html", unpatched)
    (unpatched / "index.html").write_text(asv_index_html(), encoding="utf-8")
    base = served(unpatched)
    page = _chromium.load(base)
    remote = [url for url in page.requests if not url.startswith(base)]
    assert any("jquery" in url for url in remote), page.requests  # the check can fail: here it must
    assert 'class="flot-base"' not in page.dom
