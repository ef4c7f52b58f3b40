"""DARUAN ansatz spec -> parameterised Qiskit ``QuantumCircuit``.

The circuit is read from the ansatz spec (qkan.circuits.ansatz), never from per-ansatz lists:

    H, then for l = 0..R-1: rep_gates with theta[l, p], encoding_gate at the encoded angle;
    then final_gates with theta[R, p];  f = <Z>.

Qiskit's RX/RY/RZ(a) = exp(-i a P / 2) use the same convention as this package (docs/math.md).
Qiskit is imported when a function here is first called.
"""

from __future__ import annotations

from qkan._checks import check_int, require
from qkan.circuits.ansatz import Ansatz

__all__ = ["ansatz_circuit", "layer_circuit"]


def _qiskit():
    circuit = require("qiskit.circuit", "qiskit", "Qiskit circuits")
    return circuit.Parameter, circuit.ParameterVector, circuit.QuantumCircuit


def _append(circuit, name: str, angle=None) -> None:
    """Append gate `name` ("RX" | "RY" | "RZ" at `angle`, or "H" | "X" | "Z") on qubit 0."""
    method = getattr(circuit, name.lower())
    if angle is None:
        method(0)
    else:
        method(angle, 0)


def ansatz_circuit(ansatz: Ansatz, reps: int, *, gate_angles: bool = False):
    """One DARUAN as a parameterised single-qubit circuit.

    Args:
        ansatz: the ansatz spec.
        reps: repetitions R (>= 1).
        gate_angles: False: the data rotation of rep l is applied to ``phi[l]`` (through
            ``arccos`` for arccos ansaetze, as a parameter expression). True: ``phi[l]`` is the
            gate angle itself (arccos already applied by the caller) - every parameter then
            enters exactly one rotation, which the parameter-shift rule needs.

    Returns:
        (circuit, theta, phi): ``theta`` a ParameterVector of n_slots * k angles, flattened
        slot-major (theta[s * k + p] is the layer's theta[..., s, p]); ``phi`` a ParameterVector
        of the R encoded angles. ``circuit.metadata`` holds the ansatz name and reps.
    """
    Parameter, ParameterVector, QuantumCircuit = _qiskit()
    check_int("reps", reps)
    k = ansatz.k
    theta = ParameterVector("theta", ansatz.n_slots(reps) * k)
    phi = ParameterVector("phi", reps)
    circuit = QuantumCircuit(1, name=f"daruan_{ansatz.name}")
    circuit.metadata = {"ansatz": ansatz.name, "reps": reps}
    circuit.h(0)
    for l in range(reps):
        for gate in ansatz.rep_gates:
            _append(circuit, gate.name, None if gate.param is None else theta[l * k + gate.param])
        angle = phi[l].arccos() if ansatz.arccos and not gate_angles else phi[l]
        _append(circuit, ansatz.encoding_gate, angle)
    for gate in ansatz.final_gates:
        _append(circuit, gate.name, None if gate.param is None else theta[reps * k + gate.param])
    return circuit, theta, phi


def layer_circuit(layer, edge: tuple[int, int] | None = None):
    """A QKANLayer's DARUAN as a Qiskit circuit (backs ``QKANLayer.to_qiskit``).

    Args:
        layer: a QKANLayer.
        edge: None -> the ansatz with free ParameterVectors ``theta`` (n_slots * k, slot-major)
            and ``phi`` (R encoded angles phi_l = w_l x + b_l). (j, i) -> edge j <- i with its
            current theta bound and one free Parameter ``x``, the edge's input: the data
            rotations take w_l * x + b_l (arccos of it for arccos ansaetze) with the edge's
            current encoding weights bound too.

    Returns:
        A ``qiskit.QuantumCircuit`` on one qubit; f = <Z> of its final state.

    Examples:
        >>> qc = layer.to_qiskit((0, 1))
        >>> qc.assign_parameters({qc.parameters[0]: 0.3})  # doctest: +SKIP
    """
    circuit, theta, phi = ansatz_circuit(layer.ansatz, layer.reps)
    if edge is None:
        return circuit
    j, i = layer.check_edge(edge)
    R = layer.reps
    values, w, b = (t.detach().double().reshape(-1).tolist() for t in layer.edge_parameters((j, i)))
    Parameter, _, _ = _qiskit()
    x = Parameter("x")
    bind = dict(zip(theta, values))
    bind.update({phi[l]: w[l] * x + b[l] for l in range(R)})
    bound = circuit.assign_parameters(bind)
    bound.name = f"daruan_{layer.ansatz.name}_edge_{j}_{i}"
    bound.metadata = {**circuit.metadata, "edge": (j, i)}
    return bound

