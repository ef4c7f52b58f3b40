"""DARUAN ansatz specs as PennyLane quantum functions, and one layer edge as a QNode.

The gate sequence is read from the spec in qkan.circuits.ansatz (never written per ansatz):

    H, then for l = 0..R-1: rep_gates(theta[l]), encoding_gate(phi_l or arccos(phi_l)),
    then final_gates(theta[R]); measure <Z>.

Every gate angle may carry a leading broadcast dimension (PennyLane parameter broadcasting),
so one tape can evaluate many samples and many edges at once.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from qkan._checks import require
from qkan.circuits.ansatz import Ansatz

__all__ = [
    "import_pennylane",
    "make_device",
    "device_wire",
    "gate_sequence",
    "gate_angles",
    "daruan_ops",
    "daruan_qfunc",
    "edge_qnode",
]

#: PennyLane operation class name of each gate in a spec
_OPS = {"RX": "RX", "RY": "RY", "RZ": "RZ", "H": "Hadamard", "X": "PauliX", "Z": "PauliZ"}


def import_pennylane():
    """Import PennyLane, or ImportError with the install hint."""
    return require("pennylane", "pennylane", "the PennyLane converter")


def make_device(device: Any = "default.qubit", **device_options):
    """A one-qubit PennyLane device from a name, or `device` itself when it is a device object.

    Args:
        device: a device name ("default.qubit", "lightning.qubit", "qiskit.aer", ...) or a
            device object (its wires must hold at least one wire).
        **device_options: keyword options for qml.device (e.g. seed, backend); names only.
    """
    qml = import_pennylane()
    if isinstance(device, str):
        try:
            return qml.device(device, wires=1, **device_options)
        except qml.exceptions.DeviceError as err:
            raise ValueError(f"`device` must name an installed PennyLane device; got {device!r} ({err})") from err
    if not isinstance(device, qml.devices.Device):
        raise ValueError(f"`device` must be a PennyLane device name or device object; got {type(device).__name__}")
    if device_options:
        raise ValueError(
            f"options {sorted(device_options)} apply to devices created by name; set them on the device object instead"
        )
    return device


def device_wire(device) -> Any:
    """The wire label a one-qubit circuit uses on `device` (its first wire, or 0)."""
    return device.wires[0] if device.wires is not None and len(device.wires) else 0


def gate_sequence(ansatz: Ansatz, reps: int, merge: bool = False) -> tuple[tuple[str, tuple], ...]:
    """The edge circuit in order, as (gate name, angle sources) pairs read from the spec.

    A source is ("theta", slot, p) for theta[slot, p] or ("phi", l) for the data rotation of
    repetition l (angle phi_l, or arccos(phi_l) for arccos ansaetze); fixed gates have none.
    With merge=True, consecutive rotations about the same axis become one gate whose angle is
    the sum of their sources (RZ(a) RZ(b) = RZ(a + b)): the same unitary with fewer gates.
    """
    seq: list[tuple[str, tuple]] = [("H", ())]

    def add(name: str, source: tuple | None) -> None:
        if source is None:
            seq.append((name, ()))
        elif merge and seq[-1][0] == name and seq[-1][1]:
            seq[-1] = (name, seq[-1][1] + (source,))
        else:
            seq.append((name, (source,)))

    for l in range(reps):
        for g in ansatz.rep_gates:
            add(g.name, None if g.param is None else ("theta", l, g.param))
        add(ansatz.encoding_gate, ("phi", l))
    for g in ansatz.final_gates:
        add(g.name, None if g.param is None else ("theta", reps, g.param))
    return tuple(seq)


def gate_angles(ansatz: Ansatz, theta, phis: Sequence, merge: bool = False) -> list:
    """Angles of the parametric gates of gate_sequence(ansatz, R, merge), in order (numpy or torch).

    Args:
        theta: (*, n_slots, k) angles; a leading dimension is a broadcast dimension.
        phis: R encoding angles phi_l, each a scalar or (B,).
    Returns:
        list of G angles, each a scalar or (B,) (G = parametric gates of the circuit).
    """
    qml = import_pennylane()

    def angle(source: tuple):
        if source[0] == "theta":
            return theta[..., source[1], source[2]]
        phi = phis[source[1]]
        return qml.math.arccos(phi) if ansatz.arccos else phi

    angles = []
    for _, sources in gate_sequence(ansatz, len(phis), merge):
        if sources:
            total = angle(sources[0])
            for source in sources[1:]:
                total = total + angle(source)
            angles.append(total)
    return angles


def daruan_ops(ansatz: Ansatz, reps: int, angles: Sequence, wire: Any = 0, merge: bool = False) -> list:
    """PennyLane operations of one edge from its gate angles (queued when inside a QNode).

    Args:
        angles: G gate angles as returned by gate_angles (same `merge`), each a scalar or (B,).
    """
    qml = import_pennylane()
    ops, it = [], iter(angles)
    for name, sources in gate_sequence(ansatz, reps, merge):
        op = getattr(qml, _OPS[name])
        ops.append(op(next(it), wires=wire) if sources else op(wires=wire))
    return ops


def daruan_qfunc(ansatz: Ansatz, theta, phis: Sequence, wire: Any = 0) -> None:
    """Queue one DARUAN edge's gates (no measurement); call inside a QNode or tape.

    Args:
        ansatz: the ansatz spec.
        theta: (*, n_slots, k) angles; a leading dimension is a PennyLane broadcast dimension.
        phis: R encoding angles phi_l = w_l x + b_l, each a scalar or (B,) (broadcast); the
            data gate receives arccos(phi_l) for arccos ansaetze.
        wire: the qubit's wire label.
    """
    daruan_ops(ansatz, len(phis), gate_angles(ansatz, theta, phis), wire)


def _snapshot(t):
    """A float64 numpy copy of a tensor (never a view of the parameter's memory)."""
    return t.detach().cpu().to(dtype=torch.float64, copy=True).numpy()


def edge_qnode(layer, edge: tuple[int, int] = (0, 0), device: Any = "default.qubit", **qnode_options):
    """Edge (j, i) of a QKANLayer as a standalone QNode of x: qnode(x) -> <Z> = f_ji(x).

    The QNode holds a float64 numpy snapshot of the layer's current parameters (theta and the
    edge's encoding w, b), so later training does not change it.

    Args:
        layer: a QKANLayer with measure "z".
        edge: (j, i), output and input index.
        device: a PennyLane device name or device object.
        **qnode_options: keyword options for qml.QNode (diff_method, shots, interface, ...).
    Returns:
        QNode: x a scalar or (B,) array/tensor (broadcast) -> scalar or (B,).

    Examples:
        >>> qnode = layer.to_pennylane(edge=(0, 1))
        >>> print(qml.draw(qnode)(0.3))  # doctest: +SKIP
    """
    qml = import_pennylane()
    j, i = layer.check_edge(edge)
    theta, w, b = (_snapshot(t) for t in layer.edge_parameters((j, i)))  # (n_slots, k), (R,), (R,)
    if layer.measure != "z":
        raise ValueError(
            f"only measure 'z' is a circuit observable; this layer has measure={layer.measure!r} (|alpha| - |beta|)"
        )
    dev = make_device(device)
    wire = device_wire(dev)
    ansatz, reps = layer.ansatz, layer.reps

    def daruan_edge(x):
        phis = [x if layer.enc_weight is None else w[l] * x + b[l] for l in range(reps)]
        daruan_qfunc(ansatz, theta, phis, wire)
        return qml.expval(qml.PauliZ(wire))

    daruan_edge.__name__ = f"daruan_{ansatz.name}_edge_{j}_{i}"
    return qml.QNode(daruan_edge, dev, **qnode_options)
