"""Ground states (CRLQAS, arXiv 2402.03500): lower a Hamiltonian's energy from its Hartree-Fock
state with CNOT + RX, RY, RZ, all angles re-optimised after every step.

Built-in molecules are chosen so that the search is not trivial: the Hartree-Fock start is at
least 10x chemical accuracy away from the exact energy (``start_energy``, ``exact_energy``).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import torch

from qkan._checks import check_choice, check_int, check_interval
from qkan.kanqas.circuit import ROTATIONS, Circuit, Instruction
from qkan.kanqas.curriculum import CHEMICAL_ACCURACY, MovingThreshold
from qkan.kanqas.statevector import MAX_QUBITS, AdjointEnergy, Noise, expectation, run
from qkan.kanqas.tasks import Task

__all__ = ["GroundState", "Molecule", "molecule_hamiltonian", "MOLECULES", "CHEMICAL_ACCURACY"]


class Molecule(NamedTuple):
    """A built-in molecule: STO-3G, Jordan-Wigner, optionally tapered by its Z2 symmetries."""

    symbols: tuple[str, ...]
    coordinates: tuple[tuple[float, float, float], ...]  # Angstrom
    active_electrons: int | None = None  # None: all electrons and orbitals
    active_orbitals: int | None = None
    taper: bool = False  # drop the qubits fixed by Z2 symmetries (needs active_electrons)


_LIH_STRETCHED = (("Li", "H"), ((0.0, 0.0, 0.0), (0.0, 0.0, 3.0)), 2, 3)

#: built-in molecules. Hartree-Fock error: h2 20.6 mHa (4 qubits), lih and lih6 16.3 mHa (LiH
#: stretched to 3.0 A, 2 electrons in 3 orbitals: 6 qubits, tapered to 3 for "lih";
#: CRLQAS also searches tapered Hamiltonians);
#: LiH at its equilibrium 1.5949 A in 2 electrons / 2 orbitals starts within 0.26 mHa (trivial).
#: Shortest structures at chemical accuracy (this task's optimiser, exhaustive over structures):
#: h2 RY(2) CNOT(2,3) CNOT(2,0) CNOT(2,1) (exact; all 13,272 structures of <= 3 gates stay at
#: the Hartree-Fock energy: any lowering needs the |0011> double excitation);
#: lih RY(1) RY(2) CNOT(2,0) CNOT(2,1) (1.09 mHa; 10 of the 41,160 4-gate structures reach
#: chemical accuracy, none of 3 gates: the double excitation RY(2) CNOT(2,0) CNOT(2,1) stops at
#: 6.58 mHa; no structure of <= 2 gates lowers the Hartree-Fock energy);
#: lih6 RY(2) RY(3) CNOT(2,3) CNOT(2,0) CNOT(3,1) (1.09 mHa; the ground state needs the double and
#: both single excitations; every prefix leaves the Hartree-Fock energy unchanged).
MOLECULES = {
    "h2": Molecule(("H", "H"), ((0.0, 0.0, 0.0), (0.0, 0.0, 0.7414))),
    "lih": Molecule(*_LIH_STRETCHED, taper=True),
    "lih6": Molecule(*_LIH_STRETCHED),
}


@lru_cache(maxsize=None)
def molecule_hamiltonian(name: str) -> np.ndarray:
    """Qubit Hamiltonian of a built-in molecule as a dense (2^n, 2^n) matrix (wire 0 = MSB).

    STO-3G, Jordan-Wigner, built offline with pennylane.qchem (its own Hartree-Fock) and cached
    in-process. "h2": H2 at 0.7414 A, 4 qubits. "lih6": LiH stretched to 3.0 A in an active
    space of 2 electrons in 3 spatial orbitals, 6 qubits. "lih": the same Hamiltonian tapered
    by its Z2 symmetries (qchem.taper, the Hartree-Fock sector) to 3 qubits: identical ground
    and Hartree-Fock energies, a smaller search space.
    """
    if name not in MOLECULES:
        raise ValueError(f"`name` must be one of {sorted(MOLECULES)}; got {name!r}")
    try:
        import pennylane as qml
        from pennylane import qchem
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError('molecular Hamiltonians need pennylane: pip install "qkan-daruan[kanqas]"') from err
    mol = MOLECULES[name]
    op, n = qchem.molecular_hamiltonian(list(mol.symbols), np.array(mol.coordinates), unit="angstrom",
                                        basis="sto-3g", mapping="jordan_wigner",
                                        active_electrons=mol.active_electrons, active_orbitals=mol.active_orbitals)
    wires = range(n)
    if mol.taper:
        generators = qchem.symmetry_generators(op)
        paulix = qchem.paulix_ops(generators, n)
        op = qchem.taper(op, generators, paulix, qchem.optimal_sector(op, generators, mol.active_electrons))
        wires = sorted(op.wires.tolist())
    return np.asarray(qml.matrix(op, wire_order=wires)).real.copy()


class GroundState(Task):
    """Find a low-energy circuit with CNOT + RX, RY, RZ; all angles re-optimised after each step.

    Episode state: the energy E reached by the current structure. Success when
    |E - E_exact| < threshold (Hartree; chemical accuracy by default, a curriculum may move it).
    Reward: +5 on success, -5 at max depth, otherwise clip((E_prev - E) / |E_prev - E_exact|, -1, 1).
    The observation carries the rotation angles (wrapped to [-pi, pi)) in 3 extra rows.

    Args:
        hamiltonian: "h2" | "lih" | "lih6" | a PennyLane operator | a Hermitian (2^n, 2^n) matrix
            (wire 0 = most significant bit).
        initial: "hf" (the lowest-energy basis state, Hartree-Fock for molecular Hamiltonians),
            "zero", or a bit tuple.
        optimizer: "lbfgs" (torch L-BFGS with autograd on this package's simulator, batched
            over restarts) or "cobyla" (scipy, as published).
        maxiter: optimiser iterations per step (default 30 for lbfgs, 100 for cobyla).
        restarts: lbfgs starting points per step (the current angles and perturbed copies).
        cache_size: optimised structures remembered (least recently used dropped): the energy a
            gate sequence reaches is a property of the sequence, so an episode that builds a
            known sequence again gets its angles and energy without re-optimising; 0: none.
        name: label for tables (default from `hamiltonian`).
    """

    gates = ROTATIONS
    extra_rows = len(ROTATIONS)
    observation_bounds = (-math.pi, math.pi)
    default_max_depth = 10
    goal_name = "chemical accuracy"
    optimizers = ("lbfgs", "cobyla")

    def __init__(self, hamiltonian="h2", *, initial: str | tuple[int, ...] = "hf", optimizer: str = "lbfgs",
                 maxiter: int | None = None, restarts: int = 8, cache_size: int = 100_000,
                 name: str | None = None) -> None:
        if isinstance(hamiltonian, str):
            matrix, label = molecule_hamiltonian(hamiltonian), hamiltonian
        elif isinstance(hamiltonian, np.ndarray) or isinstance(hamiltonian, torch.Tensor):
            matrix, label = np.asarray(hamiltonian), "hamiltonian"
        else:
            try:
                import pennylane as qml
            except ImportError as err:  # pragma: no cover - depends on the environment
                raise ImportError('operator Hamiltonians need pennylane: pip install "qkan-daruan[kanqas]"') from err
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
        check_choice("optimizer", optimizer, self.optimizers)
        if maxiter is None:
            maxiter = 30 if optimizer == "lbfgs" else 100
        check_int("maxiter", maxiter)
        check_int("restarts", restarts)
        check_int("cache_size", cache_size, low=0)
        self.restarts, self.cache_size = restarts, cache_size
        self._optimized: OrderedDict[tuple, tuple[np.ndarray, float]] = OrderedDict()
        self.n_qubits, self.name = n, name or label
        self.optimizer, self.maxiter = optimizer, maxiter
        self.hamiltonian = torch.as_tensor(matrix, dtype=torch.complex128)
        self._matrix = self.hamiltonian.numpy()  # (2^n, 2^n) complex128, for the adjoint energies
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
        self.start_energy = float(self.energy(Circuit(n, initial_bits=self.initial_bits))[0])

    # ------------------------------------------------------------------------------ Task API
    def start(self, circuit: Circuit, noise: Noise | None) -> float:
        return float(self.energy(circuit, noise)[0])

    def apply(self, state: float, circuit: Circuit, noise: Noise | None, rng: np.random.Generator) -> float:
        """Re-optimise all angles; a structure seen before gets its stored angles and energy back."""
        key = (noise, tuple((g.name, g.qubits) for g in circuit.gates))
        if key in self._optimized:
            angles, energy = self._optimized[key]
            self._optimized.move_to_end(key)
            circuit.angles = angles.copy()
            return energy
        energy = self.optimize(circuit, noise, rng=rng)
        self._optimized[key] = (circuit.angles.copy(), energy)
        if len(self._optimized) > self.cache_size:
            self._optimized.popitem(last=False)
        return energy

    def error(self, state: float) -> float:
        return abs(state - self.exact_energy)

    def success(self, state: float, threshold: float) -> bool:
        return self.error(state) < threshold

    def at_goal(self, state: float) -> bool:
        return self.error(state) < CHEMICAL_ACCURACY

    def reward(self, previous: float, state: float, success: bool, last: bool) -> float:
        if success:
            return 5.0
        if last:
            return -5.0
        gap = max(self.error(previous), 1e-12)
        return float(np.clip((previous - state) / gap, -1.0, 1.0))

    def info(self, state: float) -> dict:
        return {"energy": state}

    def default_threshold(self, noise: Noise | None) -> float:
        return CHEMICAL_ACCURACY

    def check_threshold(self, threshold) -> float:
        return check_interval("threshold", threshold, 0.0, math.inf, open_low=True)

    def default_curriculum(self, noise: Noise | None):
        """MovingThreshold starting at half the initial state's error (at least 2x chemical accuracy)."""
        start = self.start(Circuit(self.n_qubits, initial_bits=self.initial_bits), noise)
        return MovingThreshold(max(2 * CHEMICAL_ACCURACY, 0.5 * self.error(start)))

    def observe(self, rows: np.ndarray, circuit: Circuit, gate: Instruction) -> None:
        if gate.param is not None:
            angle = float(circuit.angles[gate.param])
            rows[ROTATIONS.index(gate.name), gate.qubits[0]] = (angle + math.pi) % (2 * math.pi) - math.pi

    # ------------------------------------------------------------------------------ energies
    def energy(self, circuit: Circuit, noise: Noise | None = None, angles: torch.Tensor | None = None) -> torch.Tensor:
        """Energies (B,) at angles (B, P) or (P,) (default the circuit's), differentiable in `angles`.

        Noiseless circuits use the adjoint method (statevector.AdjointEnergy, same values and
        gradients as autograd through ``run``, ~4x faster); noisy ones autograd on density matrices.
        """
        if noise is None or noise.is_zero:
            if angles is None:
                angles = torch.as_tensor(circuit.angles, dtype=torch.float64)
            angles = angles.to(torch.float64)
            angles = angles.reshape(1 if angles.dim() < 2 else angles.shape[0], circuit.n_params)
            return AdjointEnergy.apply(angles, circuit, self._matrix)
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
        return (f"GroundState({self.name!r}, n_qubits={self.n_qubits}, start_energy={self.start_energy:.6f}, "
                f"exact_energy={self.exact_energy:.6f})")
