"""Packing: k independent edge circuits side by side on k physical qubits of one circuit.

A DARUAN edge uses one qubit; an IBM device has 27-156. Packed, the (sample, edge) parameter
sets [theta..., phi...] of P angles fill a circuit's qubits in order: packed row r, qubit q
runs parameter set r k + q with the angles v[q P : (q + 1) P] of one ParameterVector ``v``,
and each qubit's <Z> is one value. The circuit is a product state, so simulators keep it
cheap whatever k (Aer's matrix_product_state: bond dimension 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qkan.circuits.qiskit import ansatz_circuit

__all__ = ["Packed", "pack_circuit", "pack_rows", "unpack_rows"]


@dataclass(frozen=True)
class Packed:
    """A compiled packed circuit.

    Attributes:
        circuit: the (ISA) circuit without measurements; its parameters are elements of ``v``.
        k: edge circuits per circuit; P: angles per edge circuit.
        physical: (k,) physical qubit of each packed slot.
    """

    circuit: object
    k: int
    P: int
    physical: tuple[int, ...]

    def columns(self, circuit=None) -> np.ndarray:
        """Column in a packed row (k P,) of each parameter of `circuit` (default: the packed one)."""
        circuit = self.circuit if circuit is None else circuit
        return np.array([p.index for p in circuit.parameters], dtype=np.int64)


def pack_circuit(ansatz, reps: int, k: int, target=None, layout: list[int] | None = None,
                 optimization_level: int = 1, seed: int | None = None) -> Packed:
    """The ansatz packed k times, transpiled for `target` on `layout` (physical qubits) when given.

    Args:
        ansatz, reps: the DARUAN spec.
        k: edge circuits side by side (>= 1).
        target: a BackendV2 to transpile for (None: logical circuit, qubit q is qubit q).
        layout: (k,) physical qubits (None: the transpiler's choice).
    """
    from qiskit import QuantumCircuit
    from qiskit.circuit import ParameterVector

    edge, theta, phi = ansatz_circuit(ansatz, reps, gate_angles=True)
    P = len(theta) + len(phi)
    v = ParameterVector("v", k * P)
    circuit = QuantumCircuit(k, name=f"daruan_{ansatz.name}_x{k}")
    for q in range(k):
        circuit.compose(edge.assign_parameters(dict(zip([*theta, *phi], v[q * P : (q + 1) * P]))), [q], inplace=True)
    if target is None:
        return Packed(circuit, k, P, tuple(range(k)))
    from qiskit.transpiler import generate_preset_pass_manager

    pm = generate_preset_pass_manager(
        optimization_level=optimization_level, backend=target, initial_layout=layout, seed_transpiler=seed
    )
    isa = pm.run(circuit)
    physical = range(k) if isa.layout is None else isa.layout.final_index_layout()  # None: no coupling map
    return Packed(isa, k, P, tuple(int(q) for q in physical))


def pack_rows(values: np.ndarray, k: int) -> np.ndarray:
    """(M, P) parameter sets -> (ceil(M / k), k P) packed rows; the last row is padded with zeros."""
    M, P = values.shape
    n = -(-M // k)
    rows = np.zeros((n * k, P))
    rows[:M] = values
    return rows.reshape(n, k * P)


def unpack_rows(z: np.ndarray, M: int) -> np.ndarray:
    """(n, k) values per packed row and qubit -> (M,) values in parameter-set order."""
    return z.reshape(-1)[:M]
