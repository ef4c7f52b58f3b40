"""Small-register simulator (N <= 8): batched statevectors and density matrices in torch.

States carry a leading batch axis B (e.g. several angle vectors at once):
statevector (B, 2^N), density matrix (B, 2^N, 2^N), complex128 by default. Wire 0 is the most
significant bit of a basis index (PennyLane's order; reverse the qubits for Qiskit's).
Noise (density matrices only): a bit flip with probability p1 after every single-qubit gate and
a two-qubit depolarising channel  rho -> (1 - p2) rho + p2 Tr_ct(rho) (x) I/4  after every CNOT
(Qiskit Aer's ``pauli_error([("X", p1), ("I", 1 - p1)])`` and ``depolarizing_error(p2, 2)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from qkan._checks import check_interval
from qkan.kanqas.circuit import MAX_QUBITS, Circuit
from qkan.circuits.gates import complex_dtype, fixed_gate, rotation

__all__ = ["Noise", "MAX_QUBITS", "initial_state", "apply_gate", "run", "fidelity", "expectation",
           "energy_and_gradient", "AdjointEnergy"]


@dataclass(frozen=True)
class Noise:
    """Noise channels: bit flip ``p1`` after single-qubit gates, depolarising ``p2`` after CNOTs."""

    p1: float = 0.0
    p2: float = 0.0

    def __post_init__(self) -> None:
        for arg in ("p1", "p2"):
            object.__setattr__(self, arg, check_interval(arg, getattr(self, arg), 0.0, 1.0))

    @property
    def is_zero(self) -> bool:
        return self.p1 == 0 and self.p2 == 0

    @classmethod
    def from_backend(cls, backend, qubits: list[int] | None = None) -> Noise:
        """The channels that match a backend's calibration, for noise-aware search.

        From ``backend.target``: the median error r1 of its single-qubit gates (sx, x) and r2 of
        its two-qubit gates (cx, ecr, cz) over `qubits` (default all), turned into channels of
        the same average gate infidelity: a bit flip p1 = 3 r1 / 2 (its infidelity is 2 p / 3)
        and a two-qubit depolarising channel p2 = 4 r2 / 3 (infidelity 3 p / 4). Readout errors
        and relaxation are not part of these channels.

        Raises:
            TypeError: `backend` has no ``target``. ValueError: no calibrated gate of a kind.
        """
        target = getattr(backend, "target", None)
        if target is None:
            raise TypeError(f"`backend` must be a Qiskit backend with a `target`; got {type(backend).__name__}")
        keep = None if qubits is None else set(qubits)

        def median_error(names: tuple[str, ...], arity: int) -> float:
            errors = [
                props.error
                for name in names if name in target.operation_names
                for qargs, props in target[name].items()
                if props is not None and props.error is not None and qargs is not None and len(qargs) == arity
                and (keep is None or set(qargs) <= keep)
            ]
            if not errors:
                raise ValueError(f"`backend` has no calibrated {'/'.join(names)} gates on the chosen qubits")
            return float(np.median(errors))

        p1 = min(1.0, 1.5 * median_error(("sx", "x"), 1))
        p2 = min(1.0, 4 / 3 * median_error(("cx", "ecr", "cz"), 2))
        return cls(p1, p2)


def _gate_matrix(name: str, angle: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor:
    """(2, 2) for fixed gates, (B, 2, 2) for rotations with angle (B,)."""
    if angle is not None:
        return rotation(name, angle).movedim(-1, 0)  # (2, 2, B) -> (B, 2, 2)
    if name in ("Y", "T"):
        phase = complex(math.cos(math.pi / 4), math.sin(math.pi / 4))
        values = [[0, -1j], [1j, 0]] if name == "Y" else [[1, 0], [0, phase]]
        return torch.tensor(values, dtype=complex_dtype(dtype))
    return fixed_gate(name, dtype)


@lru_cache(maxsize=None)
def _flip_index(n: int, flip: int, control: int | None = None) -> torch.Tensor:
    """Basis permutation of X on wire ``flip`` (controlled on wire ``control`` if given)."""
    idx = torch.arange(2**n)
    bit = 1 << (n - 1 - flip)
    if control is None:
        return idx ^ bit
    return torch.where((idx >> (n - 1 - control)) & 1 == 1, idx ^ bit, idx)


def _left(m: torch.Tensor, u: torch.Tensor, q: int, n: int) -> torch.Tensor:
    """Apply u ((2, 2) or (B, 2, 2)) on wire q of the row index of m (B, 2^n, K)."""
    B, _, K = m.shape
    t = m.reshape(B, 2**q, 2, 2 ** (n - q - 1) * K)  # (B, before, wire q, after * K)
    u = u.expand(B, 2, 2)
    return torch.einsum("bij,bajc->baic", u, t).reshape(B, 2**n, K)


def initial_state(n: int, *, density: bool = False, batch: int = 1, bits: tuple[int, ...] = (),
                  dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Basis state |bits> (default |0...0>): (B, 2^n) or, with density=True, (B, 2^n, 2^n)."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_QUBITS:
        raise ValueError(f"`n` must be an int in [1, {MAX_QUBITS}]; got {n!r}")
    index = int("".join(str(b) for b in bits), 2) if bits else 0
    if density:
        state = torch.zeros(batch, 2**n, 2**n, dtype=complex_dtype(dtype))
        state[:, index, index] = 1
    else:
        state = torch.zeros(batch, 2**n, dtype=complex_dtype(dtype))
        state[:, index] = 1
    return state


def apply_gate(state: torch.Tensor, name: str, qubits: tuple[int, ...], *, angle: torch.Tensor | None = None,
               noise: Noise | None = None) -> torch.Tensor:
    """One gate (and its noise channel on density matrices).

    Args:
        state: (B, 2^n) statevector or (B, 2^n, 2^n) density matrix.
        name: "CNOT" (qubits = (control, target)), "X" "Y" "Z" "H" "T", or "RX" "RY" "RZ".
        angle: (B,) or () real rotation angle for rotations.
        noise: applied after the gate; density matrices only.
    Returns:
        the new state, same shape.
    """
    density = state.dim() == 3
    n = int(round(math.log2(state.shape[1])))
    if noise is not None and not noise.is_zero and not density:
        raise ValueError("`noise` needs a density-matrix state (initial_state(..., density=True))")
    if name == "CNOT":
        perm = _flip_index(n, qubits[1], qubits[0])
        state = state[:, perm][:, :, perm] if density else state[:, perm]
        if density and noise is not None and noise.p2 > 0:
            state = (1 - noise.p2) * state + noise.p2 * _depolarised(state, qubits, n)
        return state
    if angle is not None:
        angle = torch.as_tensor(angle, dtype=state.real.dtype).reshape(-1)
    u = _gate_matrix(name, angle, state.real.dtype)
    q = qubits[0]
    if not density:
        return _left(state.unsqueeze(-1), u, q, n).squeeze(-1)
    state = _left(_left(state, u, q, n).mH, u, q, n)  # U (U rho)^dagger = U rho U^dagger
    if noise is not None and noise.p1 > 0:
        perm = _flip_index(n, q)
        state = (1 - noise.p1) * state + noise.p1 * state[:, perm][:, :, perm]
    return state


def _depolarised(rho: torch.Tensor, qubits: tuple[int, ...], n: int) -> torch.Tensor:
    """Tr_{qubits}(rho) (x) I/4 on those qubits: (B, 2^n, 2^n) -> same."""
    letters = "abcdefghijklmnopqrstuvwx"
    rows, cols = list(letters[:n]), list(letters[n:2 * n])
    for q, fresh in zip(qubits, "yZ"):
        rows[q] = cols[q] = fresh  # trace over q
    out_rows, out_cols = list(letters[:n]), list(letters[n:2 * n])
    eye = torch.eye(2, dtype=rho.dtype) / 2
    a, b = qubits
    spec = (f"z{''.join(rows)}{''.join(cols)},{out_rows[a]}{out_cols[a]},{out_rows[b]}{out_cols[b]}"
            f"->z{''.join(out_rows)}{''.join(out_cols)}")
    t = rho.reshape(rho.shape[0], *([2] * (2 * n)))  # (B, 2 x n row bits, 2 x n column bits)
    return torch.einsum(spec, t, eye, eye).reshape(rho.shape)


def run(circuit: Circuit, angles: torch.Tensor | None = None, *, noise: Noise | None = None,
        density: bool | None = None, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Simulate a whole circuit.

    Args:
        circuit: the gate list (its ``initial_bits`` set the start state).
        angles: (P,) or (B, P) rotation angles; default the circuit's own angles.
        noise: channels to apply (forces a density-matrix simulation).
        density: force (True) or forbid (False) density matrices; default: only with noise.
    Returns:
        (B, 2^n) statevectors or (B, 2^n, 2^n) density matrices (B = 1 without batched angles).
    """
    if angles is None:
        angles = torch.as_tensor(circuit.angles, dtype=dtype)
    if angles.dim() < 2:
        angles = angles.reshape(1, circuit.n_params)
    if density is None:
        density = noise is not None and not noise.is_zero
    state = initial_state(circuit.n_qubits, density=density, batch=angles.shape[0],
                          bits=circuit.initial_bits, dtype=dtype)
    for gate in circuit.gates:
        angle = None if gate.param is None else angles[:, gate.param]
        state = apply_gate(state, gate.name, gate.qubits, angle=angle, noise=noise)
    return state


def fidelity(state: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """<t|rho|t> or |<t|psi>|^2 for a pure target t (2^n,): state (B, ...) -> (B,) real."""
    target = target.to(state.dtype)
    if state.dim() == 3:
        return torch.einsum("i,bij,j->b", target.conj(), state, target).real
    return (state @ target.conj()).abs() ** 2


def expectation(state: torch.Tensor, hamiltonian: torch.Tensor) -> torch.Tensor:
    """<psi|H|psi> or Tr(rho H) for a Hermitian (2^n, 2^n) H: state (B, ...) -> (B,) real."""
    hamiltonian = hamiltonian.to(state.dtype)
    if state.dim() == 3:
        return torch.einsum("bij,ji->b", state, hamiltonian).real
    return torch.einsum("bi,ij,bj->b", state.conj(), hamiltonian, state).real


# ----------------------------------------------------------------------------- adjoint energies
_PAULI = {"RX": np.array([[0, 1], [1, 0]], complex), "RY": np.array([[0, -1j], [1j, 0]]),
          "RZ": np.array([[1, 0], [0, -1]], complex)}


def _np_rotation(name: str, angle: np.ndarray) -> np.ndarray:
    """exp(-i angle P / 2) for angle (B,): (B, 2, 2) complex."""
    c, s = np.cos(angle / 2)[:, None, None], np.sin(angle / 2)[:, None, None]
    return c * np.eye(2) - 1j * s * _PAULI[name]


def _np_apply(psi: np.ndarray, u: np.ndarray, q: int, n: int) -> np.ndarray:
    """u ((2, 2) or (B, 2, 2)) on wire q of psi (B, 2^n)."""
    t = psi.reshape(psi.shape[0], 2**q, 2, -1)  # (B, before, wire q, after)
    u = u[:, None] if u.ndim == 3 else u  # (B, 1, 2, 2) or (2, 2)
    return (u @ t).reshape(psi.shape)


def energy_and_gradient(circuit: Circuit, angles: np.ndarray, hamiltonian: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Noiseless <psi|H|psi> (B,) and its gradient (B, P) at angles (B, P), by the adjoint method.

    One forward sweep, then one backward sweep that undoes each gate on |psi> and on
    |lambda> = H|psi>: dE/dtheta_k = Im <lambda_k| P_k |psi_k> for a rotation exp(-i theta P / 2)
    (states just after gate k). Plain numpy: about 10x fewer operations' overhead than autograd
    on these 2^N <= 256 amplitude states. Same gates and conventions as ``run``.
    """
    n, (B, P) = circuit.n_qubits, angles.shape
    psi = np.zeros((B, 2**n), complex)
    psi[:, int("".join(map(str, circuit.initial_bits)), 2) if circuit.initial_bits else 0] = 1
    unitaries = []
    for gate in circuit.gates:
        if gate.name == "CNOT":
            u = _flip_index(n, gate.qubits[1], gate.qubits[0]).numpy()
            psi = psi[:, u]  # a CNOT is its own inverse permutation
        else:
            u = (_np_rotation(gate.name, angles[:, gate.param]) if gate.param is not None
                 else _gate_matrix(gate.name, None, torch.float64).numpy())
            psi = _np_apply(psi, u, gate.qubits[0], n)
        unitaries.append(u)
    lam = psi @ hamiltonian.T  # H |psi> for each row
    energy = np.einsum("bi,bi->b", psi.conj(), lam).real
    grad = np.zeros((B, P))
    for gate, u in zip(reversed(circuit.gates), reversed(unitaries)):
        if gate.name == "CNOT":
            psi, lam = psi[:, u], lam[:, u]
            continue
        q = gate.qubits[0]
        if gate.param is not None:
            grad[:, gate.param] += np.einsum("bi,bi->b", lam.conj(), _np_apply(psi, _PAULI[gate.name], q, n)).imag
        inverse = np.conj(np.swapaxes(u, -1, -2))
        psi, lam = _np_apply(psi, inverse, q, n), _np_apply(lam, inverse, q, n)
    return energy, grad


class AdjointEnergy(torch.autograd.Function):
    """Noiseless energies (B,) at angles (B, P) (float64) with the adjoint gradient, for torch optimisers."""

    @staticmethod
    def forward(ctx, angles: torch.Tensor, circuit: Circuit, hamiltonian: np.ndarray) -> torch.Tensor:
        energy, grad = energy_and_gradient(circuit, angles.detach().numpy(), hamiltonian)
        ctx.save_for_backward(torch.from_numpy(grad))
        return torch.from_numpy(energy)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (grad,) = ctx.saved_tensors
        return grad_output[:, None] * grad, None, None
