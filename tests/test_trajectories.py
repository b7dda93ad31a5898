"""The paths drawn in the report: computed by the real optimizers, on the plot, and sent to the page intact."""

import json
import re

import numpy as np
import pytest

import fastopt
from fastopt.cli import _chromium
from fastopt.cli.tour import trajectories as tr


def test_paths_survive_the_trip_to_the_page():
    points = tr.path(tr.ROSENBROCK, "Adam", 0.1, "reference", steps=50)
    np.testing.assert_allclose(tr.decode(tr._encoded(points)), points, atol=0.5 / tr.SCALE + 1e-12)


def test_a_path_is_the_optimizer_stepping_the_surface():
    points = tr.path(tr.SADDLE, "RMSprop", 0.01, "reference", steps=5)
    point = np.array(tr.SADDLE.start)
    opt = fastopt.RMSprop([point], lr=0.01, backend="reference")
    for expected in points[1:]:
        opt.step([tr.SADDLE.value_and_grad(point)[1]])
        np.testing.assert_array_equal(point, expected)


def test_surfaces_gradients_match_finite_differences():
    for surface in tr.SURFACES.values():
        point, h = np.array([0.3, -0.7]), 1e-6
        numeric = [(surface.value_and_grad(point + h * e)[0] - surface.value_and_grad(point - h * e)[0]) / (2 * h)
                   for e in np.eye(2)]
        np.testing.assert_allclose(surface.value_and_grad(point)[1], numeric, rtol=1e-6)
        for minimum in surface.minima:
            assert np.allclose(surface.value_and_grad(np.array(minimum))[1], 0.0)


def test_chosen_lr_keeps_the_path_on_the_plot_and_is_on_the_shared_grid():
    for name in ("SGD", "Adam", "Lion"):
        lr, points = tr.choose_lr(tr.ROSENBROCK, name, "auto")
        assert lr in tr.LR_GRID and tr.on_plot(tr.ROSENBROCK, points)
    diverging = tr.path(tr.ROSENBROCK, "SGD", 1.0, "auto")
    assert len(diverging) < tr.ROSENBROCK.steps + 1 and not tr.on_plot(tr.ROSENBROCK, diverging)


def test_playground_holds_every_slider_setting_computed_by_the_kernels():
    data = tr.playground_data("auto", quick=True)
    for surface in tr.SURFACES:
        for name, grid in tr.PLAYGROUND.items():
            table = data["runs"][surface][name]
            expected = len(data["lr"]) * int(np.prod([len(v) for v in grid.values()]))
            assert len(table) == expected
    lr_index, beta1, beta2 = 2, 1, 0  # lr[2], beta1 0.5, beta2 0.9
    key = f"{lr_index}|{beta1}|{beta2}"
    fresh = tr.path(tr.ROSENBROCK, "Adam", data["lr"][lr_index], "auto", steps=tr.PLAYGROUND_STEPS, betas=(0.5, 0.9))
    np.testing.assert_allclose(tr.decode(data["runs"]["rosenbrock"]["Adam"][key]), fresh, atol=0.5 / tr.SCALE + 1e-12)


def test_html_fragment_is_self_contained():
    paths = {s: {"Adam": tr.choose_lr(tr.SURFACES[s], "Adam", "auto")} for s in tr.SURFACES}
    fragment = tr.html(tr.race_data(paths), tr.playground_data("auto", quick=True))
    assert "http://" not in fragment and "https://" not in fragment and "<script src" not in fragment
    data = json.loads(re.search(r'id="trajectory-data">(.*?)</script>', fragment, re.S).group(1))
    assert set(data) == {"race", "playground"}
    for element in ("race-svg", "race-play", "race-step", "play-svg", "play-loss", "play-lr"):
        assert f'id="{element}"' in fragment


@pytest.mark.skipif(_chromium.find_chromium() is None, reason="no Chromium (apt-get install chromium)")
def test_race_and_playground_draw_in_a_browser(quick_tour):
    out, _, _ = quick_tour
    dom = _chromium.load((out / "report.html").as_uri()).dom
    race = re.search(r'<svg[^>]*id="race-svg".*?</svg>', dom, re.S).group(0)
    assert race.count("<circle") >= len(tr.OPTIMIZERS)  # one dot per optimizer (and the start)
    play = re.search(r'<svg[^>]*id="play-svg".*?</svg>', dom, re.S).group(0)
    assert re.search(r'<path d="M[-\d.]+,[-\d.]+L', play)  # the selected path was drawn
    assert "f above the minimum at the end" in dom or "diverged after" in dom
