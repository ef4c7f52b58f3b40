"""PennyLane evaluator: a whole QKAN layer as one broadcast QNode execution.

Every (sample, edge) pair becomes one element of a PennyLane broadcast dimension of size
M = N * O * I: theta is gathered per edge, the encoding angles phi_l = w_l x + b_l are formed in
torch, and one QNode call (torch interface) evaluates all M single-qubit circuits. Gradients
flow through PennyLane's differentiation (backprop, adjoint, parameter-shift, finite-diff, ...)
to theta, the encodings and x. Devices that do not broadcast natively (lightning.qubit, plugin
devices) receive the same single call and split it into tapes inside PennyLane.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch

from qkan.circuits.pennylane import daruan_qfunc, device_wire, import_pennylane, make_device

__all__ = ["PennyLaneEvaluator", "DIFF_METHODS"]

DIFF_METHODS = ("best", "backprop", "adjoint", "parameter-shift", "finite-diff", "spsa", "hadamard", "device", None)


@contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Make `dtype` torch's default dtype for the duration of a QNode call.

    PennyLane's torch interface converts results with torch.as_tensor; devices that return
    Python floats (lightning.qubit with adjoint) would otherwise come back as float32.
    """
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


class PennyLaneEvaluator:
    """Evaluate DARUAN edges as PennyLane circuits on any device.

    Args:
        device: a device name ("default.qubit", "lightning.qubit", "qiskit.aer", "qiskit.remote",
            ...) or a PennyLane device object (then `seed` and device options go on the object).
        diff_method: "best" | "backprop" | "adjoint" | "parameter-shift" | "finite-diff" | ...
            (any of DIFF_METHODS; None disables gradients).
        shots: None (exact expectation values) or the number of shots per circuit.
        seed: seed of a device created by name (for reproducible shots).
        **device_options: extra options for qml.device when `device` is a name (e.g. backend=
            for "qiskit.remote" / "qiskit.aer").

    Example:
        >>> layer.set_evaluator("pennylane", device="lightning.qubit", diff_method="adjoint")  # doctest: +SKIP
    """

    name = "pennylane"
    supports_grad = True

    def __init__(
        self,
        device: Any = "default.qubit",
        diff_method: str | None = "best",
        shots: int | None = None,
        seed: int | None = None,
        **device_options,
    ) -> None:
        qml = import_pennylane()
        if diff_method not in DIFF_METHODS:
            raise ValueError(f"`diff_method` must be one of {list(DIFF_METHODS)}; got {diff_method!r}")
        if shots is not None and (isinstance(shots, bool) or not isinstance(shots, int) or shots < 1):
            raise ValueError(f"`shots` must be None or an int >= 1; got {shots!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"`seed` must be an int or None; got {seed!r}")
        if seed is not None:
            device_options["seed"] = seed
        self.device = make_device(device, **device_options)
        self.diff_method, self.shots, self.seed = diff_method, shots, seed
        self._wire = device_wire(self.device)
        self._qnodes: dict = {}
        self._qml = qml

    def __repr__(self) -> str:
        return f"PennyLaneEvaluator(device={self.device.name!r}, diff_method={self.diff_method!r}, shots={self.shots})"

    def unsupported(self, layer) -> str | None:
        """Why this evaluator cannot run `layer`, or None."""
        if layer.measure != "z":
            return f"measure {layer.measure!r} (|alpha| - |beta|) is not an observable; circuits measure only 'z'"
        return None

    def _qnode(self, ansatz, reps: int):
        """One QNode per (ansatz, reps): circuit(theta (M, n_slots, k), phis (R, M)) -> (M,)."""
        key = (ansatz.name, reps)
        if key not in self._qnodes:
            qml, wire = self._qml, self._wire

            def daruan_edges(theta, phis):
                daruan_qfunc(ansatz, theta, list(phis), wire)  # every gate angle is (M,)
                return qml.expval(qml.PauliZ(wire))

            options = {} if self.shots is None else {"shots": self.shots}
            self._qnodes[key] = qml.QNode(
                daruan_edges, self.device, interface="torch", diff_method=self.diff_method, **options
            )
        return self._qnodes[key]

    def edge_outputs(self, layer, x: torch.Tensor) -> torch.Tensor:
        """(N, I) -> (N, O, I): f_ji(x_i), all N * O * I circuits in one broadcast execution."""
        N, O, I, R = x.shape[0], layer.out_dim, layer.in_dim, layer.reps
        if N == 0:
            return x.new_zeros(0, O, I)
        slots, k = layer.theta.shape[2:]
        # theta (O', I', S, k) -> (N, O, I, S, k) -> (M, S, k); M = N * O * I, samples outermost
        theta = layer.theta.expand(O, I, slots, k).expand(N, O, I, slots, k).reshape(-1, slots, k)
        w, b = layer.encoding_parameters()
        xs = x[:, None, :, None]  # (N, 1, I, 1)
        phi = xs if w is None else w * xs + b  # (N, O' or 1, I, R)
        phis = phi.expand(N, O, I, R).permute(3, 0, 1, 2).reshape(R, -1)  # (R, M)
        with _default_dtype(x.dtype):
            f = self._qnode(layer.ansatz, R)(theta, phis)  # (M,)
        return torch.as_tensor(f).to(dtype=x.dtype, device=x.device).reshape(N, O, I)

    def forward(self, layer, x: torch.Tensor) -> torch.Tensor:
        """(N, I) -> (N, O): the layer formula on the circuit values."""
        return layer.combine_edges(self.edge_outputs(layer, x), x)
