"""Conformance helpers: check any evaluator against a plain 2x2 statevector.

The reference below is deliberately independent of the evaluators: numpy, explicit matrices
written from shared/design/daruan.md, one sample and one edge at a time.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["reference_edge", "reference_layer", "assert_matches_reference"]

_H = np.array([[1, 1], [1, -1]], dtype=complex) / np.sqrt(2)
_X = np.array([[0, 1], [1, 0]], dtype=complex)
_Z = np.array([[1, 0], [0, -1]], dtype=complex)


def _rz(a: float) -> np.ndarray:
    return np.array([[np.exp(-0.5j * a), 0], [0, np.exp(0.5j * a)]])


def _ry(a: float) -> np.ndarray:
    c, s = np.cos(a / 2), np.sin(a / 2)
    return np.array([[c, -s], [s, c]], dtype=complex)


def _rx(a: float) -> np.ndarray:
    c, s = np.cos(a / 2), np.sin(a / 2)
    return np.array([[c, -1j * s], [-1j * s, c]])


def reference_edge(ansatz: str, theta: np.ndarray, phis: np.ndarray, measure: str = "z") -> float:
    """One DARUAN value from its gate sequence.

    Args:
        ansatz: "pz" | "rpz" | "px" | "real" | "mix".
        theta: (n_slots, k) angles of one edge.
        phis: (R,) encoding angles phi_l = w_l x + b_l.
        measure: "z" (<Z>) or "amplitude" (|alpha| - |beta|).
    """
    theta = np.asarray(theta, dtype=float).reshape(len(theta), -1)
    psi = _H @ np.array([1, 0], dtype=complex)
    for l, phi in enumerate(phis):
        t = theta[l]
        if ansatz == "pz":
            gates = [_rz(t[0]), _ry(t[1]), _rz(phi)]
        elif ansatz == "rpz":
            gates = [_ry(t[0]), _rz(phi)]
        elif ansatz == "px":
            gates = [_rz(t[0]), _rx(np.arccos(phi))]
        elif ansatz == "real":
            gates = [_X, _ry(t[0]), _Z, _ry(phi)]
        elif ansatz == "mix":
            gates = [_rz(t[0]), _rx(t[1]), _ry(phi)]
        else:
            raise ValueError(f"unknown ansatz {ansatz!r}")
        for g in gates:
            psi = g @ psi
    t = theta[len(phis)] if len(theta) > len(phis) else None
    if ansatz == "pz":
        psi = _ry(t[1]) @ _rz(t[0]) @ psi
    elif ansatz == "rpz":
        psi = _ry(t[0]) @ psi
    elif ansatz == "px":
        psi = _rz(t[0]) @ psi
    elif ansatz == "mix":
        psi = _rx(t[1]) @ _rz(t[0]) @ psi
    if measure == "z":
        return float(np.real(np.conj(psi) @ _Z @ psi))
    return float(abs(psi[0]) - abs(psi[1]))


def reference_layer(layer, x: torch.Tensor) -> np.ndarray:
    """Edge values of a QKANLayer by the reference: x (N, I) -> (N, O, I) float64 numpy."""
    O, I, R = layer.out_dim, layer.in_dim, layer.reps
    theta = layer.theta.detach().double().expand(O, I, *layer.theta.shape[2:]).cpu().numpy()
    w, b = layer.encoding_parameters()
    w = np.ones((O, I, R)) if w is None else w.detach().double().expand(O, I, R).cpu().numpy()
    b = np.zeros((O, I, R)) if b is None else b.detach().double().expand(O, I, R).cpu().numpy()
    xs = x.detach().double().cpu().numpy()
    out = np.empty((len(xs), O, I))
    for n in range(len(xs)):
        for j in range(O):
            for i in range(I):
                out[n, j, i] = reference_edge(layer.ansatz.name, theta[j, i], w[j, i] * xs[n, i] + b[j, i], layer.measure)
    return out


def assert_matches_reference(layer, x: torch.Tensor, atol: float = 1e-12) -> None:
    """Assert layer.edge_outputs(x) and layer(x) equal the reference statevector within atol."""
    ref = reference_layer(layer, x)
    got = layer.edge_outputs(x).detach().double().cpu().numpy()
    np.testing.assert_allclose(got, ref, rtol=0, atol=atol, err_msg=f"edge outputs, evaluator {layer.evaluator}")
    scale, const = layer.edge_weights()
    y_ref = np.einsum("noi,oi->no", ref, scale.detach().double().cpu().numpy()) + const.detach().double().cpu().numpy()
    base = layer.base_term(x)
    if isinstance(base, torch.Tensor):
        y_ref = y_ref + base.detach().double().cpu().numpy()
    y = layer(x).detach().double().cpu().numpy()
    np.testing.assert_allclose(y, y_ref, rtol=0, atol=atol * max(1, layer.in_dim), err_msg=f"layer output, evaluator {layer.evaluator}")
