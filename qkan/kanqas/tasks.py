"""Search targets: state preparation (Bell, GHZ-N, any state) and ground states (H2, LiH, any
Hamiltonian), with exact energies by diagonalisation and per-step angle optimisation.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from qkan._checks import check_int
from qkan.kanqas.circuit import FIXED_GATES, ROTATIONS, Circuit
from qkan.kanqas.simulator import MAX_QUBITS, Noise, expectation, fidelity, run

__all__ = ["StatePrep", "GroundState", "make_task", "molecule_hamiltonian", "MOLECULES", "CHEMICAL_ACCURACY"]

#: |E - E_exact| below this (Hartree) is chemical accuracy
CHEMICAL_ACCURACY = 1.6e-3

#: built-in molecules: symbols, coordinates (Angstrom), active electrons and orbitals
MOLECULES = {
    "h2": (("H", "H"), ((0.0, 0.0, 0.0), (0.0, 0.0, 0.7414)), None, None),
    "lih": (("Li", "H"), ((0.0, 0.0, 0.0), (0.0, 0.0, 1.5949)), 2, 2),
}


@lru_cache(maxsize=None)
def molecule_hamiltonian(name: str) -> np.ndarray:
    """Qubit Hamiltonian of a built-in molecule as a dense (2^n, 2^n) matrix (wire 0 = MSB).

    STO-3G, Jordan-Wigner, built offline with pennylane.qchem (its own Hartree-Fock) and cached
    in-process. "h2": H2 at 0.7414 A, 4 qubits. "lih": LiH at 1.5949 A in an active space of
    2 electrons in 2 spatial orbitals, 4 qubits.
    """
    if name not in MOLECULES:
        raise ValueError(f"`name` must be one of {sorted(MOLECULES)}; got {name!r}")
    try:
        import pennylane as qml
        from pennylane import qchem
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError('molecular Hamiltonians need pennylane: pip install "qkan[kanqas]"') from err
    symbols, coords, electrons, orbitals = MOLECULES[name]
    op, n = qchem.molecular_hamiltonian(list(symbols), np.array(coords), unit="angstrom", basis="sto-3g",
                                        mapping="jordan_wigner", active_electrons=electrons,
                                        active_orbitals=orbitals)
    return np.asarray(qml.matrix(op, wire_order=range(n))).real.copy()


class StatePrep:
    """Prepare a target state from |0...0> with CNOT + X, Y, Z, H, T.

    Args:
        target: "bell" (2 qubits), "ghz" (n_qubits, default 3) or a state vector (2^n,)
            in wire-0-most-significant order (normalised here).
        n_qubits: for "ghz" (>= 2); inferred for a vector.
        threshold: success when the fidelity reaches it (0.98 as published).
    """

    gates = FIXED_GATES

    def __init__(self, target: str | np.ndarray = "bell", n_qubits: int | None = None, *,
                 threshold: float = 0.98) -> None:
        if not 0 < threshold <= 1:
            raise ValueError(f"`threshold` must be in (0, 1]; got {threshold!r}")
        self.threshold = float(threshold)
        if isinstance(target, str):
            if target not in ("bell", "ghz"):
                raise ValueError(f"`target` must be 'bell', 'ghz' or a state vector; got {target!r}")
            n = 2 if target == "bell" else (3 if n_qubits is None else n_qubits)
            if target == "bell" and n_qubits not in (None, 2):
                raise ValueError(f"`n_qubits` must be 2 for 'bell'; got {n_qubits!r}")
            if isinstance(n, bool) or not isinstance(n, int) or not 2 <= n <= MAX_QUBITS:
                raise ValueError(f"`n_qubits` must be an int in [2, {MAX_QUBITS}]; got {n!r}")
            state = np.zeros(2**n, dtype=complex)
            state[0] = state[-1] = 1 / math.sqrt(2)
            self.name = "bell" if target == "bell" else f"ghz{n}"
        else:
            state = np.asarray(target, dtype=complex).reshape(-1)
            n = int(round(math.log2(max(len(state), 1))))
            if 2**n != len(state) or not 1 <= n <= MAX_QUBITS or not np.linalg.norm(state) > 0:
                raise ValueError(f"`target` vector must be nonzero with length 2^n, n in [1, {MAX_QUBITS}]; "
                                 f"got length {len(state)}")
            if n_qubits not in (None, n):
                raise ValueError(f"`n_qubits` must match the target vector ({n}); got {n_qubits!r}")
            state = state / np.linalg.norm(state)
            self.name = "state"
        self.n_qubits = n
        self.target = torch.as_tensor(state, dtype=torch.complex128)

    def reference_circuit(self) -> Circuit | None:
        """Textbook circuit for Bell/GHZ (H then a CNOT chain); None for a custom state."""
        if self.name == "state":
            return None
        circuit = Circuit(self.n_qubits)
        circuit.append("H", (0,))
        for q in range(self.n_qubits - 1):
            circuit.append("CNOT", (q, q + 1))
        return circuit

    def reachable_fidelity(self, noise: Noise | None) -> float:
        """Fidelity of the reference circuit under `noise` (1.0 without noise or reference)."""
        reference = self.reference_circuit()
        if noise is None or noise.is_zero or reference is None:
            return 1.0
        return float(fidelity(run(reference, noise=noise), self.target)[0])

    def score(self, state: torch.Tensor) -> float:
        """Fidelity of a (1, ...) state with the target."""
        return float(fidelity(state, self.target)[0])

    def __repr__(self) -> str:
        return f"StatePrep({self.name!r}, n_qubits={self.n_qubits}, threshold={self.threshold})"


class GroundState:
    """Find a low-energy circuit with CNOT + RX, RY, RZ; all angles re-optimised after each step.

    Args:
        hamiltonian: "h2" | "lih" | a PennyLane operator | a Hermitian (2^n, 2^n) matrix
            (wire 0 = most significant bit).
        initial: "hf" (the lowest-energy basis state, Hartree-Fock for molecular Hamiltonians),
            "zero", or a bit tuple.
        optimizer: "lbfgs" (torch L-BFGS with autograd on this package's simulator, batched
            over restarts) or "cobyla" (scipy, as published).
        maxiter: optimiser iterations per step (default 30 for lbfgs, 100 for cobyla).
        restarts: lbfgs starting points per step (the current angles and perturbed copies).
        name: label for tables (default from `hamiltonian`).
    """

    gates = ROTATIONS
    optimizers = ("lbfgs", "cobyla")

    def __init__(self, hamiltonian="h2", *, initial: str | tuple[int, ...] = "hf", optimizer: str = "lbfgs",
                 maxiter: int | None = None, restarts: int = 8, name: str | None = None) -> None:
        if isinstance(hamiltonian, str):
            matrix, label = molecule_hamiltonian(hamiltonian), hamiltonian
        elif isinstance(hamiltonian, np.ndarray) or isinstance(hamiltonian, torch.Tensor):
            matrix, label = np.asarray(hamiltonian), "hamiltonian"
        else:
            try:
                import pennylane as qml
            except ImportError as err:  # pragma: no cover - depends on the environment
                raise ImportError('operator Hamiltonians need pennylane: pip install "qkan[kanqas]"') from err
            wires = sorted(hamiltonian.wires.tolist())
            if wires != list(range(len(wires))):
                raise ValueError(f"`hamiltonian` must act on wires 0..n-1; got {wires}")
            matrix, label = np.asarray(qml.matrix(hamiltonian, wire_order=wires)), "hamiltonian"
        n = int(round(math.log2(max(matrix.shape[0], 1))))
        if matrix.ndim != 2 or matrix.shape != (2**n, 2**n) or not 1 <= n <= MAX_QUBITS:
            raise ValueError(f"`hamiltonian` must be a (2^n, 2^n) matrix with n in [1, {MAX_QUBITS}]; "
                             f"got shape {matrix.shape}")
        if not np.allclose(matrix, matrix.conj().T, atol=1e-10):
            raise ValueError("`hamiltonian` must be Hermitian")
        if optimizer not in self.optimizers:
            raise ValueError(f"`optimizer` must be one of {list(self.optimizers)}; got {optimizer!r}")
        if maxiter is None:
            maxiter = 30 if optimizer == "lbfgs" else 100
        check_int("maxiter", maxiter)
        check_int("restarts", restarts)
        self.restarts = restarts
        self.n_qubits, self.name = n, name or label
        self.optimizer, self.maxiter = optimizer, maxiter
        self.hamiltonian = torch.as_tensor(matrix, dtype=torch.complex128)
        self.exact_energy = float(np.linalg.eigvalsh(matrix)[0])
        if initial == "hf":
            index = int(np.argmin(np.real(np.diag(matrix))))
            self.initial_bits = tuple(int(b) for b in format(index, f"0{n}b"))
        elif initial == "zero":
            self.initial_bits = (0,) * n
        else:
            bits = tuple(int(b) for b in initial)
            if len(bits) != n or set(bits) - {0, 1}:
                raise ValueError(f"`initial` must be 'hf', 'zero' or {n} bits; got {initial!r}")
            self.initial_bits = bits

    def energy(self, circuit: Circuit, noise: Noise | None = None, angles: torch.Tensor | None = None) -> torch.Tensor:
        """Energies (B,) at angles (B, P) or (P,) (default the circuit's)."""
        return expectation(run(circuit, angles, noise=noise), self.hamiltonian)

    def optimize(self, circuit: Circuit, noise: Noise | None = None, rng: np.random.Generator | None = None) -> float:
        """Optimise all angles of `circuit` in place, starting from its current angles.

        "lbfgs" runs torch L-BFGS on a batch: the current angles plus ``restarts - 1`` copies
        perturbed by N(0, 1) (drawn from `rng`), since the Hartree-Fock start is often a
        stationary point; the best row wins. "cobyla" runs scipy's COBYLA from the current angles.
        Returns the energy reached (never above the starting energy).
        """
        start = torch.as_tensor(circuit.angles, dtype=torch.float64)
        e0 = float(self.energy(circuit, noise, start)[0])
        if circuit.n_params == 0:
            return e0
        if self.optimizer == "cobyla":
            from scipy.optimize import minimize

            def f(a: np.ndarray) -> float:
                return float(self.energy(circuit, noise, torch.as_tensor(a))[0])

            res = minimize(f, start.numpy(), method="COBYLA", options={"maxiter": self.maxiter, "rhobeg": 0.5})
            best, e = torch.as_tensor(res.x), float(res.fun)
        else:
            rng = np.random.default_rng() if rng is None else rng
            kick = torch.as_tensor(rng.normal(size=(self.restarts, circuit.n_params)))
            kick[0] = 0
            angles = (start + kick).requires_grad_(True)  # (restarts, P)
            opt = torch.optim.LBFGS([angles], lr=1, max_iter=self.maxiter, tolerance_grad=1e-10,
                                    tolerance_change=1e-14, line_search_fn="strong_wolfe")

            def closure() -> torch.Tensor:
                opt.zero_grad()
                loss = self.energy(circuit, noise, angles).sum()  # rows are independent
                loss.backward()
                return loss

            opt.step(closure)
            with torch.no_grad():
                energies = self.energy(circuit, noise, angles)
            k = int(torch.argmin(energies))
            best, e = angles.detach()[k], float(energies[k])
        if e > e0:
            best, e = start, e0
        circuit.angles = best.numpy().copy()
        return e

    def __repr__(self) -> str:
        return f"GroundState({self.name!r}, n_qubits={self.n_qubits}, exact_energy={self.exact_energy:.6f})"


def make_task(name: str | StatePrep | GroundState) -> StatePrep | GroundState:
    """A task from a short name: "bell", "ghz3" ("ghzN"), "h2", "lih"; task objects pass through."""
    if isinstance(name, (StatePrep, GroundState)):
        return name
    if name == "bell":
        return StatePrep("bell")
    if isinstance(name, str) and name.startswith("ghz") and name[3:].isdigit():
        return StatePrep("ghz", int(name[3:]))
    if name in MOLECULES:
        return GroundState(name)
    raise ValueError(f"`task` must be 'bell', 'ghzN' (e.g. 'ghz3'), 'h2', 'lih' or a task object; got {name!r}")
