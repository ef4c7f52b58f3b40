"""Qiskit evaluator: DARUAN edges on Aer or IBM backends through EstimatorV2 primitives.

A layer forward is one EstimatorV2 job: the ansatz circuit is transpiled once per backend to
an ISA circuit (cached), and every (sample, edge) pair is one row of the PUBs' parameter-value
arrays. Gradients use the parameter-shift rule (shared/design/daruan.md) on every gate angle:
theta, and the encoded angles phi_l = w_l x + b_l (the gate angle arccos(phi_l) for "px"), all
shifts of a backward pass in one job; torch's chain rule then gives df/dx = sum_l w_l df/dphi_l,
df/dw_l = x df/dphi_l and df/db_l = df/dphi_l. The rule is exact for noisy expectations too,
since every parameter enters one rotation exp(-i a P / 2).

Backends (option ``backend``):
    None                           Aer: exact statevector (shots=None) or sampled shots
    AerSimulator (ideal or noisy,  exact expectation of the noise model's gate errors
      e.g. from_backend(fake))       (shots=None; no readout error) or sampled shots
    other BackendV2 (fake or real  qiskit_ibm_runtime.EstimatorV2(mode=backend); shots=None
      IBM backend)                   leaves the primitive's default precision
    a BaseEstimatorV2 instance     used as given (circuits are transpiled for its backend when
                                     it exposes one)
"""

from __future__ import annotations

import math

import numpy as np
import torch

from qkan._checks import check_int
from qkan.circuits.qiskit import ansatz_circuit
from qkan.simulators.base import Evaluator

__all__ = ["QiskitEvaluator", "QiskitJobError"]

_SHIFT = math.pi / 2


class QiskitJobError(RuntimeError):
    """A Qiskit primitive job failed or was cancelled; the message names backend, job and layer."""


def _shots_precision(shots: int) -> float:
    """The largest precision p with ceil(1 / p^2) == shots (how estimators turn p into shots)."""
    p = 1 / math.sqrt(shots)
    while math.ceil(1 / p**2) > shots:
        p = math.nextafter(p, math.inf)
    return p


def _is_simulator(backend) -> bool:
    """True for Aer and qiskit-ibm-runtime fake backends (seedable, local)."""
    from qiskit_aer import AerSimulator

    if isinstance(backend, AerSimulator):
        return True
    try:
        from qiskit_ibm_runtime.fake_provider.fake_backend import FakeBackendV2
    except ImportError:  # pragma: no cover
        return False
    return isinstance(backend, FakeBackendV2)


def _job_info(job) -> tuple[str, str]:
    """(job id, status) of a job for error messages, whatever the job's state."""
    if job is None:
        return "<not submitted>", "status unknown"
    info = []
    for getter in ("job_id", "status"):
        try:
            value = getattr(job, getter)()
            info.append(str(getattr(value, "name", value)))
        except Exception:  # noqa: BLE001 - only for the message
            info.append("unknown")
    return info[0], f"status {info[1]}"


def _layer_name(layer) -> str:
    return f"{type(layer).__name__}({layer.extra_repr()})"


class QiskitEvaluator(Evaluator):
    """DARUAN edges through a Qiskit EstimatorV2 (Aer, fake or real IBM backends).

    Args:
        backend: None, an AerSimulator, a BackendV2 (e.g. FakeManilaV2 or an IBM backend from
            QiskitRuntimeService) or a BaseEstimatorV2 instance (see the module docstring).
        shots: shots per expectation value (None: exact where the backend allows it).
        precision: target standard error per value instead of shots (estimators use
            ceil(1 / precision^2) shots); give at most one of shots and precision.
        optimization_level: preset pass manager level 0..3 for the ISA circuit.
        seed: seeds the transpiler and the simulators this evaluator drives (each job draws a
            fresh simulator seed from it, so results are reproducible and jobs independent).
        max_pub_size: parameter sets per PUB (Aer's estimator slows down quadratically in it).
        max_circuits_per_job: parameter sets per job; larger evaluations are split (None: one job).
        threads: Aer's max_parallel_threads for simulators this evaluator creates (None: Aer's choice).

    Attributes:
        jobs_submitted, circuits_submitted: counters of jobs and parameter sets run so far.
    """

    name = "qiskit"

    def __init__(
        self,
        backend=None,
        *,
        shots: int | None = None,
        precision: float | None = None,
        optimization_level: int = 1,
        seed: int | None = None,
        max_pub_size: int = 256,
        max_circuits_per_job: int | None = None,
        threads: int | None = None,
    ) -> None:
        try:
            from qiskit.primitives import BaseEstimatorV2
            from qiskit.providers import BackendV2
        except ImportError as err:  # pragma: no cover - the test environment has qiskit
            raise ImportError('the "qiskit" evaluator needs qiskit: pip install "qkan[qiskit]"') from err
        check_int("shots", shots, 1, allow_none=True)
        if precision is not None and (
            isinstance(precision, bool) or not isinstance(precision, (int, float)) or not 0 < precision < math.inf
        ):
            raise ValueError(f"`precision` must be a float > 0 or None; got {precision!r}")
        if shots is not None and precision is not None:
            raise ValueError(f"give `shots` or `precision`, not both; got shots={shots}, precision={precision}")
        if optimization_level not in (0, 1, 2, 3) or isinstance(optimization_level, bool):
            raise ValueError(f"`optimization_level` must be 0, 1, 2 or 3; got {optimization_level!r}")
        check_int("seed", seed, 0, allow_none=True)
        check_int("max_pub_size", max_pub_size, 1)
        check_int("max_circuits_per_job", max_circuits_per_job, 1, allow_none=True)
        check_int("threads", threads, 1, allow_none=True)
        if backend is not None and not isinstance(backend, (BackendV2, BaseEstimatorV2)):
            raise ValueError(
                "`backend` must be None, a qiskit BackendV2 (AerSimulator, a fake or IBM backend) or an "
                f"EstimatorV2 instance; got {type(backend).__name__}"
            )
        self.backend = backend
        self.shots = shots
        self.precision = _shots_precision(shots) if shots is not None else precision
        self.optimization_level = optimization_level
        self.seed = seed
        self.max_pub_size = int(max_pub_size)
        self.max_circuits_per_job = max_circuits_per_job
        self.threads = threads
        self._rng = np.random.default_rng(seed)
        self._estimator, self._target = self._make_estimator(backend, BackendV2, BaseEstimatorV2)
        self._seedable = backend is None or not isinstance(backend, BaseEstimatorV2) and _is_simulator(backend)
        self._isa: dict[tuple[str, int], tuple] = {}
        self.jobs_submitted = 0
        self.circuits_submitted = 0

    # ------------------------------------------------------------------------ backends
    def _make_estimator(self, backend, BackendV2, BaseEstimatorV2):
        """(estimator, target backend for transpilation or None)."""
        from qiskit.primitives import BackendEstimatorV2
        from qiskit_aer import AerSimulator
        from qiskit_aer.primitives import EstimatorV2 as AerEstimatorV2

        sampled = self.precision is not None
        if isinstance(backend, BaseEstimatorV2):
            target = getattr(backend, "backend", None)
            if callable(target) and not isinstance(target, BackendV2):
                target = target()  # qiskit-ibm-runtime primitives: backend()
            return backend, target if isinstance(target, BackendV2) else None
        if backend is None:
            options = {} if self.threads is None else {"max_parallel_threads": self.threads}
            sim = AerSimulator(**options)
            if sampled:
                return BackendEstimatorV2(backend=sim), None
            return AerEstimatorV2(options={"backend_options": {"method": "statevector", **options}}), None
        if isinstance(backend, AerSimulator):  # the user's simulator keeps its own options
            if sampled:
                return BackendEstimatorV2(backend=backend), backend
            return AerEstimatorV2.from_backend(backend), backend
        try:
            from qiskit_ibm_runtime import EstimatorV2 as RuntimeEstimatorV2
        except ImportError as err:  # pragma: no cover - the test environment has it
            raise ImportError(
                'running on an IBM or fake backend needs qiskit-ibm-runtime: pip install "qkan[qiskit]"'
            ) from err
        return RuntimeEstimatorV2(mode=backend), backend

    @property
    def backend_name(self) -> str:
        """A readable name of the backend the jobs run on."""
        if self._target is not None:
            return str(self._target.name)
        if self.backend is not None:
            return type(self.backend).__name__
        return "aer_simulator (" + ("sampled" if self.precision is not None else "exact statevector") + ")"

    def _reseed(self) -> None:
        """Give the next job a fresh simulator seed drawn from `seed` (simulators only)."""
        if self.seed is None or not self._seedable:
            return
        options = self._estimator.options
        s = int(self._rng.integers(2**31 - 1))
        if hasattr(options, "seed_simulator"):  # BackendEstimatorV2 (Aer, sampled)
            options.seed_simulator = s
        elif hasattr(options, "simulator"):  # qiskit-ibm-runtime with a fake backend (local mode)
            options.simulator.seed_simulator = s

    def _compiled(self, ansatz, reps: int):
        """(ISA circuit, observable, column of each ISA parameter in [theta..., phi...])."""
        key = (ansatz.name, reps)
        if key not in self._isa:
            from qiskit.quantum_info import SparsePauliOp

            circuit, theta, phi = ansatz_circuit(ansatz, reps, gate_angles=True)
            observable = SparsePauliOp("Z")
            if self._target is not None:
                from qiskit.transpiler import generate_preset_pass_manager

                pm = generate_preset_pass_manager(
                    optimization_level=self.optimization_level, backend=self._target, seed_transpiler=self.seed
                )
                circuit = pm.run(circuit)
                observable = observable.apply_layout(circuit.layout)
            column = {p.name: c for c, p in enumerate([*theta, *phi])}
            columns = np.array([column[p.name] for p in circuit.parameters], dtype=np.int64)
            self._isa[key] = (circuit, observable, columns)
        return self._isa[key]

    # ------------------------------------------------------------------------ jobs
    def run_values(self, layer, values: np.ndarray, stage: str = "forward") -> np.ndarray:
        """Expectation values of the layer's ansatz at many parameter sets.

        Args:
            values: (M, P) gate angles [theta (n_slots * k, slot-major), phi (R)], P = n_slots*k + R.
            stage: what the job is for, named in errors ("forward", "backward").
        Returns:
            (M,) float64 <Z> values. One job, or ceil(M / max_circuits_per_job) jobs.
        """
        circuit, observable, columns = self._compiled(layer.ansatz, layer.reps)
        values = np.ascontiguousarray(values[:, columns], dtype=np.float64)  # (M, P_isa)
        out = np.empty(len(values))
        per_job = self.max_circuits_per_job or max(1, len(values))
        for start in range(0, len(values), per_job):
            chunk = values[start : start + per_job]
            pubs = [(circuit, observable, chunk[s : s + self.max_pub_size]) for s in range(0, len(chunk), self.max_pub_size)]
            out[start : start + len(chunk)] = self._submit(layer, pubs, stage)
        return out

    def _submit(self, layer, pubs: list, stage: str) -> np.ndarray:
        """Run one job of PUBs; QiskitJobError naming backend, job id and layer when it fails."""
        self._reseed()
        job = None
        try:
            job = self._estimator.run(pubs) if self.precision is None else self._estimator.run(pubs, precision=self.precision)
            result = job.result()
            evs = np.concatenate([np.asarray(r.data.evs, dtype=np.float64).reshape(-1) for r in result])
        except Exception as err:
            job_id, status = _job_info(job)
            raise QiskitJobError(
                f"Qiskit {stage} job {job_id} ({status}) on backend {self.backend_name!r} failed for layer "
                f"{_layer_name(layer)}: {type(err).__name__}: {err}. Parameters are unchanged; "
                "zero the gradients and retry, or switch back with layer.set_evaluator('auto')"
            ) from err
        expected = sum(len(p[2]) for p in pubs)
        if evs.shape != (expected,):
            raise QiskitJobError(
                f"Qiskit {stage} job {_job_info(job)[0]} on backend {self.backend_name!r} returned {evs.size} values "
                f"for {expected} parameter sets of layer {_layer_name(layer)}"
            )
        self.jobs_submitted += 1
        self.circuits_submitted += expected
        return evs

    # ------------------------------------------------------------------------ interface
    def unsupported(self, layer) -> str | None:
        """Why this evaluator cannot run `layer`, or None."""
        if layer.measure != "z":
            return f"measure {layer.measure!r} is not an observable; hardware estimators measure only 'z' (<Z>)"
        return None

    def edge_outputs(self, layer, x: torch.Tensor) -> torch.Tensor:
        """(N, I) -> (N, O, I): f_ji(x_i) estimated by the backend, differentiable by parameter shift."""
        N = x.shape[0]
        phi = layer.encoded_angles(x)  # (N, Oe, I, R)
        angles = torch.arccos(phi) if layer.ansatz.arccos else phi
        f = _ShiftRule.apply(self, layer, layer.theta, angles)  # (N, O'', I)
        return f.expand(N, layer.out_dim, layer.in_dim)



def _parameter_grid(theta: torch.Tensor, angles: torch.Tensor) -> np.ndarray:
    """All gate angles of every (sample, edge): theta (O', I', S, k), angles (N, Oe, I, R) -> (N, Ob, I, P)."""
    N, Oe, I, R = angles.shape
    Ob = max(theta.shape[0], Oe)
    t = theta.detach().reshape(theta.shape[0], theta.shape[1], -1).to(torch.float64).cpu()  # (O', I', S*k)
    a = angles.detach().to(torch.float64).cpu()
    t = t.expand(Ob, I, -1).unsqueeze(0).expand(N, Ob, I, -1)  # (N, Ob, I, S*k)
    return torch.cat([t, a.expand(N, Ob, I, R)], dim=-1).numpy()  # (N, Ob, I, P)


class _ShiftRule(torch.autograd.Function):
    """Edge values from a Qiskit job; backward by the parameter-shift rule in one more job.

    forward(evaluator, layer, theta (O', I', S, k), angles (N, Oe, I, R)) -> f (N, Ob, I).
    """

    @staticmethod
    def forward(ctx, evaluator: QiskitEvaluator, layer, theta: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
        grid = _parameter_grid(theta, angles)  # (N, Ob, I, P)
        f = evaluator.run_values(layer, grid.reshape(-1, grid.shape[-1]), "forward") if grid.size else np.empty(0)
        ctx.evaluator, ctx.layer = evaluator, layer
        ctx.save_for_backward(theta, angles)
        return torch.as_tensor(f.reshape(grid.shape[:-1]), dtype=theta.dtype, device=theta.device)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        theta, angles = ctx.saved_tensors
        grid = _parameter_grid(theta, angles)  # (N, Ob, I, P)
        n_theta = grid.shape[-1] - angles.shape[-1]
        which = []
        if ctx.needs_input_grad[2]:
            which += range(n_theta)
        if ctx.needs_input_grad[3]:
            which += range(n_theta, grid.shape[-1])
        if grid.size == 0:  # no samples: nothing to shift
            return None, None, torch.zeros_like(theta), torch.zeros_like(angles)
        Q = len(which)
        shifted = np.broadcast_to(grid, (2, Q, *grid.shape)).copy()  # (2, Q, N, Ob, I, P)
        for q, p in enumerate(which):
            shifted[0, q, ..., p] += _SHIFT
            shifted[1, q, ..., p] -= _SHIFT
        f = ctx.evaluator.run_values(ctx.layer, shifted.reshape(-1, grid.shape[-1]), "backward")
        f = f.reshape(2, Q, *grid.shape[:-1])
        deriv = torch.as_tensor(np.moveaxis((f[0] - f[1]) / 2, 0, -1), dtype=grad.dtype, device=grad.device)
        g = grad.unsqueeze(-1) * deriv  # (N, Ob, I, Q): dL/d(gate angle) per sample and edge
        grad_theta = grad_angles = None
        if ctx.needs_input_grad[2]:
            gt = g[..., :n_theta].sum(0)  # (Ob, I, S*k)
            grad_theta = gt.sum_to_size(theta.shape[0], theta.shape[1], n_theta).reshape(theta.shape)
        if ctx.needs_input_grad[3]:
            grad_angles = g[..., Q - angles.shape[-1] :].sum_to_size(angles.shape)
        return None, None, grad_theta, grad_angles
