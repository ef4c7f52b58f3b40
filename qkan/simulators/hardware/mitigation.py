"""Error mitigation for <Z> values: readout inversion, zero-noise extrapolation, repeats, clipping.

- Readout: with e01 = P(read 1 | 0) and e10 = P(read 0 | 1) a qubit's measured <Z> is
  z' = (e10 - e01) + z (1 - e01 - e10); inverting the 2x2 confusion matrix gives
  z = (z' + e01 - e10) / (1 - e01 - e10), exact in expectation.
- Zero-noise extrapolation: the circuit U is folded to U (U^dag U)^n (noise scale 2n + 1) and
  the values at scales c_s extrapolated to c = 0 with weights w_s: f(0) ~ sum_s w_s f(c_s)
  (Richardson: the polynomial through all points; linear: the least-squares line).
- Repeats average independent executions; the result is clipped to [-1, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from qkan._checks import check_bool, check_choice, check_int, check_type

__all__ = ["Mitigation", "parse_mitigation", "extrapolation_weights", "readout_correct", "fold"]


@dataclass(frozen=True)
class Mitigation:
    """What to mitigate: readout inversion, ZNE noise scales and extrapolation, repeats."""

    readout: bool = False
    zne: tuple[int, ...] | None = None
    extrapolation: str = "richardson"
    repeats: int = 1

    @property
    def scales(self) -> tuple[int, ...]:
        """Noise scales to execute (1 without ZNE)."""
        return self.zne or (1,)

    def weights(self) -> np.ndarray:
        """(S,) weights of the scales' values in the mitigated value."""
        return extrapolation_weights(self.scales, self.extrapolation) if self.zne else np.ones(1)

    def apply(self, raw: np.ndarray, e01: np.ndarray, e10: np.ndarray) -> np.ndarray:
        """raw (S, repeats, ..., k) values per scale and repeat, rates (S, ..., k) -> (..., k) mitigated."""
        z = raw.mean(axis=1)
        if self.readout:
            z = readout_correct(z, e01, e10)
        z = np.tensordot(self.weights(), z, axes=1)
        return np.clip(z, -1.0, 1.0)


def parse_mitigation(value) -> Mitigation:
    """Check the ``mitigation`` option (None or a dict) and return it as a Mitigation."""
    if value is None:
        return Mitigation()
    check_type("mitigation", value, dict, allow_none=True)
    unknown = set(value) - {"readout", "zne", "extrapolation", "repeats"}
    if unknown:
        raise ValueError(
            f"`mitigation` takes the keys 'readout', 'zne', 'extrapolation', 'repeats'; got unknown {sorted(unknown)}"
        )
    readout = value.get("readout", False)
    check_bool("mitigation['readout']", readout)
    zne = value.get("zne")
    if zne is not None:
        check_type("mitigation['zne']", zne, (list, tuple))
        for scale in zne:
            check_int("mitigation['zne'] scale", scale, 1)
            if scale % 2 == 0:
                raise ValueError(f"`mitigation['zne']` scales must be odd ints >= 1 (unitary folding); got {list(zne)}")
        if len(set(zne)) < 2:
            raise ValueError(f"`mitigation['zne']` needs at least two different scales; got {list(zne)}")
        zne = tuple(int(s) for s in zne)
    extrapolation = value.get("extrapolation", "richardson")
    check_choice("mitigation['extrapolation']", extrapolation, ("richardson", "linear"))
    repeats = value.get("repeats", 1)
    check_int("mitigation['repeats']", repeats, 1)
    return Mitigation(bool(readout), zne, extrapolation, int(repeats))


def extrapolation_weights(scales, method: str = "richardson") -> np.ndarray:
    """(S,) weights w with f(0) ~ sum_s w_s f(scales[s]).

    Richardson: Lagrange weights of the polynomial of degree S - 1 through all points,
    w_s = prod_{t != s} c_t / (c_t - c_s). Linear: the intercept of the least-squares line.
    """
    c = np.asarray(scales, dtype=np.float64)
    if method == "richardson":
        return np.array([math.prod(c[t] / (c[t] - c[s]) for t in range(len(c)) if t != s) for s in range(len(c))])
    design = np.stack([np.ones_like(c), c], axis=1)  # (S, 2): f = a + b c
    return np.linalg.pinv(design)[0]


#: smallest 1 - e01 - e10 (the fraction of <Z> a readout keeps) that readout mitigation inverts
MIN_READOUT_SIGNAL = 0.01


def readout_correct(z: np.ndarray, e01: np.ndarray, e10: np.ndarray) -> np.ndarray:
    """Measured <Z> -> <Z> before readout error (e01 = P(1|0), e10 = P(0|1), broadcast per qubit).

    Raises:
        ValueError: a calibration is (nearly) singular, 1 - e01 - e10 < MIN_READOUT_SIGNAL: its
            readout keeps no signal and inverting it would turn every value into +-1.
    """
    signal = 1.0 - np.asarray(e01) - np.asarray(e10)
    if np.any(signal < MIN_READOUT_SIGNAL):
        bad = np.unique(np.round(np.asarray(signal)[signal < MIN_READOUT_SIGNAL], 4))
        raise ValueError(
            f"readout calibration is singular: 1 - e01 - e10 = {bad.tolist()} (< {MIN_READOUT_SIGNAL}) on some qubits, "
            "their readout carries no signal; recalibrate, exclude those qubits (initial_layout, max_readout_error) "
            "or turn mitigation['readout'] off")
    return (z + e01 - e10) / signal


def _inverse_ops(op) -> list:
    """Gates whose product is op^dag, in op's own basis: sx^dag = rz(pi) sx rz(pi) up to a phase
    (device noise models know sx, not sxdg); every other gate inverts to its own type."""
    from qiskit.circuit.library import RZGate, SXGate

    if op.name == "sx":
        return [RZGate(math.pi), SXGate(), RZGate(math.pi)]
    if op.name in ("barrier", "delay"):
        return [op]
    return [op.inverse()]


def fold(circuit, scale: int):
    """U -> U (U^dag U)^n for scale = 2n + 1, gate by gate in U's own basis (no new gate types).

    Args:
        circuit: a circuit of one-qubit gates without measurements (an ISA circuit).
        scale: odd int >= 1.
    Returns:
        A new circuit with the same qubits and parameters; barriers keep the folds apart.
    """
    from qiskit import QuantumCircuit

    if scale == 1:
        return circuit
    inverse = QuantumCircuit(*circuit.qregs, *circuit.cregs)
    for instruction in reversed(circuit.data):
        for op in _inverse_ops(instruction.operation):
            inverse.append(op, instruction.qubits)
    folded = circuit.copy()
    for _ in range((scale - 1) // 2):
        folded.barrier()
        folded.compose(inverse, inplace=True)
        folded.barrier()
        folded.compose(circuit, inplace=True)
    return folded
