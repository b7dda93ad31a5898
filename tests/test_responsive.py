"""report.html and the ``show`` pages at 400, 800 and 1400 px, measured in headless Chromium.

At each width: nothing is wider than the window unless it sits in its own horizontal scroller
(tables, code), no table, figure or code panel overlaps another, and the page has a viewport tag.
The ``show`` page's code columns keep a readable width (squeezed side by side at 400 px, they
would hold a character or two per line and the RMSprop page would be ~35,000 px tall). Two control
pages show that the measurements can fail. ``docs/screenshots.py`` takes the matching screenshots.
"""

import pytest

from fastopt.cli import _chromium

pytestmark = pytest.mark.skipif(_chromium.find_chromium() is None, reason="no Chromium (apt-get install chromium)")
WIDTHS = (400, 800, 1400)


@pytest.fixture(scope="module")
def show_page(tmp_path_factory):
    from fastopt.cli.show._html import write_pages

    return write_pages(["RMSprop"], tmp_path_factory.mktemp("show") / "rmsprop.html", single=True)[0]


def assert_fits(metrics: dict, width: int) -> None:
    assert metrics["viewport_tag"]
    assert metrics["scroll_width"] <= width, metrics
    assert metrics["wide_blocks"] == [], metrics
    assert metrics["overlaps"] == [], metrics


@pytest.mark.parametrize("width", WIDTHS)
def test_report_fits_the_window(quick_tour, width):
    out, _, _ = quick_tour
    assert_fits(_chromium.page_metrics((out / "report.html").as_uri(), width), width)


@pytest.mark.parametrize("width", WIDTHS)
def test_show_page_fits_the_window_and_keeps_code_readable(show_page, width):
    metrics = _chromium.page_metrics(show_page.as_uri(), width)
    assert_fits(metrics, width)
    assert metrics["narrowest_code"] >= 200  # px: ~30 characters of 13 px monospace, not one or two
    assert metrics["height"] < 12_000


def test_the_measurements_can_fail(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><body>"  # no viewport tag, a wide table, two panels on top of each other
                    "<table style='width:900px'><tr><td>wide</td></tr></table>"
                    "<pre style='position:absolute;top:0;left:0;width:300px;height:100px'>code</pre>"
                    "<table style='position:absolute;top:20px;left:20px;width:300px;height:100px'><tr><td>t</td></tr></table>"
                    "</body></html>")
    metrics = _chromium.page_metrics(page.as_uri(), 400)
    assert not metrics["viewport_tag"]
    assert metrics["scroll_width"] > 400 and "table" in metrics["wide_blocks"]
    assert metrics["overlaps"]
