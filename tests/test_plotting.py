"""Network and edge plots (qkan.plotting): files are real images, curves are the edges' functions."""

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.image import imread

from qkan import QKAN, QKANLayer
from qkan.interpret import attribution, edge_activations
from qkan.plotting import plot_attribution, plot_edge, plot_model


def _by_gid(fig, prefix):
    return {a.get_gid(): a for a in fig.findobj() if isinstance(a.get_gid(), str) and a.get_gid().startswith(prefix)}


def test_plot_model_draws_every_kept_edge_with_its_curve(tmp_path):
    model = QKAN([2, 3, 1], reps=2, seed=0, dtype=torch.float64)
    with torch.no_grad():
        model.layers[0].mask[1, 0] = 0
    x = torch.rand(40, 2, dtype=torch.float64) * 2 - 1
    path = tmp_path / "model.png"
    fig = plot_model(model, path, x=x, n_points=20)
    assert isinstance(fig, Figure)
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image[..., :3].std() > 0.05  # not a blank canvas
    edges, curves = _by_gid(fig, "edge-"), _by_gid(fig, "curve-")
    assert len(edges) == len(curves) == 5 + 3 and "edge-0-1-0" not in edges
    # each curve is an affine image of phi_ji on the input's range
    lo, hi = x.min(0).values, x.max(0).values
    t = lo + (hi - lo) * torch.linspace(0, 1, 20, dtype=torch.float64)[:, None]
    phi = edge_activations(model.layers[0], t).detach()
    for (j, i) in [(0, 0), (2, 1)]:
        y = curves[f"curve-0-{j}-{i}"].get_ydata()
        assert np.corrcoef(y, phi[:, j, i].numpy())[0, 1] > 1 - 1e-9
    # fading follows attribution: the most important edge of a layer is opaque
    scores = attribution(model, x).edges[1][0]
    alphas = [edges[f"edge-1-0-{i}"].get_alpha() for i in range(3)]
    assert alphas[int(scores.argmax())] == 1.0
    assert np.argsort(alphas).tolist() == torch.argsort(scores).tolist()


def test_plot_model_defaults_to_reference_input_or_uniform_points(tmp_path):
    model = QKAN([1, 2], reps=1, seed=1)
    fig = plot_model(model)
    assert len(_by_gid(fig, "curve-")) == 2
    model.reference_input = torch.linspace(-2, 2, 9)[:, None]
    path = tmp_path / "ref.svg"
    plot_model(model, str(path))
    assert path.stat().st_size > 1000 and path.read_text().lstrip().startswith("<?xml")
    with pytest.raises(ValueError, match="`n_points` must be an int >= 2"):
        plot_model(model, n_points=1)


def test_plot_edge_curve_and_spectrum(tmp_path):
    layer = QKANLayer(2, 2, reps=3, seed=5, dtype=torch.float64)
    path = tmp_path / "edge.png"
    fig = plot_edge(layer, 1, 0, path)
    assert imread(path).shape[0] > 100
    bars = [p.get_height() for p in fig.axes[1].patches if p.get_gid() == "spectrum"]
    a = layer.fourier_coefficients()[1, 0].detach()
    expected = [abs(a[0].item())] + [float(np.hypot(a[n].item(), a[3 + n].item())) for n in (1, 2, 3)]
    np.testing.assert_allclose(bars, expected, rtol=0, atol=1e-12)
    line = _by_gid(fig, "daruan")["daruan"]
    t = torch.from_numpy(line.get_xdata())
    assert abs(t[0].item() + np.pi) < 1e-12 and abs(t[-1].item() - np.pi) < 1e-12
    f = layer.edge_outputs(torch.stack([t, t], -1))[:, 1, 0].detach().numpy()
    np.testing.assert_allclose(line.get_ydata(), f, rtol=0, atol=1e-12)


def test_plot_edge_without_closed_form_and_errors(tmp_path):
    layer = QKANLayer(1, 2, reps=2, seed=0, ansatz="px")
    fig = plot_edge(layer, 0, 0, tmp_path / "px.png")
    assert "daruan" in _by_gid(fig, "daruan") and not _by_gid(fig, "spectrum")
    assert any("no finite Fourier series" in t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")))
    assert (tmp_path / "px.png").stat().st_size > 0
    with pytest.raises(ValueError, match=r"`i` must be an int <= 0; got 1"):
        plot_edge(layer, 0, 1)
    with pytest.raises(ValueError, match="`x_range` must be"):
        plot_edge(layer, 0, 0, x_range=(1, -1))


def test_plot_model_names_inputs_and_outputs():
    model = QKAN([2, 2, 1], reps=1, seed=0)
    fig = model.plot(in_vars=[r"$\mu$", "N"], out_vars=["F"])
    texts = [a.get_text() for a in fig.findobj() if a.get_gid() in ("in-var", "out-var")]
    assert texts == [r"$\mu$", "N", "F"]
    default = plot_model(model)
    assert [a.get_text() for a in default.findobj() if a.get_gid() == "in-var"] == ["$x_{1}$", "$x_{2}$"]
    with pytest.raises(ValueError, match=r"`in_vars` must have 2 names \(one per node\); got 3"):
        plot_model(model, in_vars=["a", "b", "c"])
    with pytest.raises(TypeError, match="`out_vars` must be a list of 1 str or None"):
        plot_model(model, out_vars="F")


def test_plot_attribution_bars_are_the_input_scores(tmp_path):
    model = QKAN([3, 2, 1], reps=2, seed=0, dtype=torch.float64)
    with torch.no_grad():
        model.layers[0].mask[:, 1] = 0  # input 2 carries nothing
    x = torch.rand(30, 3, dtype=torch.float64) * 2 - 1
    scores = attribution(model, x).nodes[0]
    path = tmp_path / "scores.png"
    fig = plot_attribution(model, x, path, in_vars=["a", "b", "c"], threshold=0.05)
    assert imread(path).shape[0] > 50
    bars = _by_gid(fig, "score-")
    heights = {int(k.split("-")[1]): a.get_height() for k, a in bars.items()}
    np.testing.assert_allclose([heights[k] for k in range(3)], scores.numpy(), rtol=0, atol=1e-12)
    assert bars["score-1"].get_height() == 0 and bars["score-1"].get_facecolor() != bars["score-0"].get_facecolor()
    ax = fig.axes[0]
    order = torch.argsort(scores, descending=True).tolist()
    assert [t.get_text() for t in ax.get_xticklabels()] == [["a", "b", "c"][k] for k in order]
    assert _by_gid(fig, "threshold")
    with pytest.raises(ValueError, match="`threshold` must be a number >= 0"):
        plot_attribution(model, x, threshold=-1.0)
