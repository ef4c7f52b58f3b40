"""Qiskit evaluator: DARUAN edges on Aer, fake or real IBM backends, at the physical limit.

A layer forward is one evaluation of M = N x O x I (sample, edge) parameter sets [theta...,
phi...]; ``pack`` of them run side by side on as many physical qubits of one circuit
(hardware.packing), on qubits chosen from the backend's calibration (hardware.layout), with
optional mitigation (hardware.mitigation). Gradients use the parameter-shift rule
(docs/math.md, "Gradients on circuits") on every gate angle, all shifts of a backward pass in one more
evaluation, on mitigated values too; torch's chain rule then gives df/dx = sum_l w_l df/dphi_l,
df/dw_l = x df/dphi_l and df/db_l = df/dphi_l. The rule is exact for noisy expectations too,
since every parameter enters one rotation exp(-i a P / 2).

Backends (option ``backend``) and how they run (hardware.executors, hardware.product):
    None, or an AerSimulator        exact (noisy) expectations of each packed qubit from its
      (ideal or noisy, e.g.           gates' and errors' Pauli transfer matrices (the packed
      from_backend(fake))             circuit is a product state), shots drawn as binomials from
                                      this evaluator's seeded generator with the noise model's
                                      readout error folded in (shots=None: exact, no readout);
                                      Aer itself runs the circuits where the noise model has
                                      multi-qubit terms, or with product_simulation=False
    a fake backend (local mode)     the same qubit-by-qubit simulation under the fake backend's
                                      own noise model: the distribution of its local sampler at
                                      a fraction of the cost; product_simulation=False runs
                                      qiskit-ibm-runtime's EstimatorV2 in local mode, the route
                                      of real backends
    other BackendV2 (real IBM)      qiskit_ibm_runtime.EstimatorV2(mode=backend, or a Batch /
                                      Session with ``mode``): sampled, the real thing
    a BaseEstimatorV2 instance      used as given (circuits transpiled for its backend when it
                                      exposes one)
"""

from __future__ import annotations

import itertools
import math
import weakref

import numpy as np
import torch

from qkan._checks import check_bool, check_choice, check_int, check_number, check_type
from qkan.simulators.base import Evaluator
from qkan.simulators.hardware.executors import AerExecutor, EstimatorExecutor, is_fake_backend as _is_fake
from qkan.simulators.hardware.jobs import QiskitJobError, run_tasks
from qkan.simulators.hardware.layout import auto_qubits, calibration_report, rank_qubits
from qkan.simulators.hardware.mitigation import parse_mitigation
from qkan.simulators.hardware.packing import Packed, pack_circuit, pack_rows, unpack_rows
from qkan.simulators.hardware.product import ProductExecutor

__all__ = ["QiskitEvaluator", "QiskitJobError"]

_SHIFT = math.pi / 2
#: a local simulation without max_circuits_per_job runs in about this many jobs, each of at least
#: PROGRESS_MIN_ROWS packed rows, so its progress bar advances while it runs (real backends: one job)
PROGRESS_STEPS, PROGRESS_MIN_ROWS = 20, 32
_AER_PACK = 64  # pack="auto" without a device: Aer's per-row overhead is amortised by then
_WIDE = 16  # fake backends switch to matrix_product_state above this many packed qubits
_MAX_SHOTS = 10**9  # shots per value; a precision of about 3.2e-5
#: the noise model of each fake backend, built once (about 2 s for a 127-qubit device)
_NOISE_MODELS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
#: one open Batch / Session per (backend, mode), shared by the evaluators of a model's layers
_MODES: dict[tuple[int, str], object] = {}


def _shots_precision(shots: int) -> float:
    """The largest precision p with ceil(1 / p^2) == shots (how estimators turn p into shots)."""
    p = 1 / math.sqrt(shots)
    while math.ceil(1 / p**2) > shots:
        p = math.nextafter(p, math.inf)
    return p


def _fake_noise_model(backend):
    """The noise model a fake backend's local mode samples with (its own builder; Aer's as a fallback)."""
    if backend not in _NOISE_MODELS:
        model = getattr(backend.options, "noise_model", None)
        if model is None:
            build = getattr(backend, "_get_noise_model_from_backend_v2", None)  # what local mode itself uses
            if build is not None:
                model = build()
            else:  # pragma: no cover - older qiskit-ibm-runtime
                from qiskit_aer.noise import NoiseModel

                model = NoiseModel.from_backend(backend)
        _NOISE_MODELS[backend] = model
    return _NOISE_MODELS[backend]


def _layer_name(layer) -> str:
    return f"{type(layer).__name__}({layer.extra_repr()})"


class QiskitEvaluator(Evaluator):
    """DARUAN edges through Aer, fake or real IBM backends (docs/hardware.md is the guide).

    Args:
        backend: None, an AerSimulator, a BackendV2 (e.g. FakeManilaV2 or an IBM backend from
            QiskitRuntimeService) or a BaseEstimatorV2 instance (see the module docstring).
        shots: shots per expectation value, 1 to 1e9 (None: exact where the backend allows it,
            local simulations of fake backends included).
        precision: target standard error per value instead of shots (shots = ceil(1 / precision^2)),
            at least 1e-9 ** 0.5; give at most one of shots and precision.
        optimization_level: preset pass manager level 0..3 for the ISA circuit.
        seed: seeds the transpiler, the binomial shots and the simulators this evaluator drives
            (each job draws a fresh simulator seed from it: reproducible, independent jobs).
        max_pub_size: parameter sets per PUB of estimator jobs.
        max_circuits_per_job: packed parameter sets per job; larger evaluations are split into
            jobs submitted together (None: one job per noise scale).
        threads: Aer's max_parallel_threads for simulators this evaluator creates.
        pack: None (one edge circuit per circuit; on a device-less Aer simulator, whose qubits
            have no identity, 64 per circuit), an int k, or "auto": on a device the calibrated
            qubits of the "auto" rule (below), or those of `initial_layout`; 64 on device-less
            Aer, 1 for a device-less estimator. A fake backend packed wider than 16 qubits that
            its own simulator runs is switched to Aer's matrix_product_state method.
        initial_layout: None (the transpiler's placement; with pack="auto" the "auto" qubits),
            "auto" or a list of physical qubits, one per packed edge circuit. The "auto" rule:
            the usable qubits (calibrated measure and sx/x, errors < 0.5) whose readout error is
            at or below the chip's median (or at or below `max_readout_error` when given), best
            first by readout + pulses x gate error + decoherence; an int `pack` larger than that
            set takes the next best qubits (unless `max_readout_error` is given).
        max_readout_error: qubits with a larger readout error are not used (with initial_layout
            None or "auto": the qubits are then ranked from the calibration).
        mitigation: None or {"readout": bool, "zne": [1, 3, 5] | None, "extrapolation":
            "richardson" | "linear", "repeats": int}.
        runtime_options: dict set on qiskit-ibm-runtime's EstimatorV2 options (resilience_level,
            twirling, dynamical_decoupling, ...). With qkan's `mitigation` on, the estimator this
            evaluator creates for an IBM backend starts at resilience_level 0 (runtime_options
            may override it; local mode has no resilience levels).
        mode: None, "batch" or "session": qiskit-ibm-runtime execution mode (close() ends it).
        job_callback: called as job_callback(event, info) per job (see hardware.jobs); an
            exception in it is reported as a warning.
        job_timeout: seconds to wait for a job's result before cancelling the evaluation's jobs
            and raising QiskitJobError (None: wait as long as it takes).
        product_simulation: on local backends (Aer, fake backends) simulate the packed one-qubit
            circuits qubit by qubit when the noise model has no multi-qubit terms for them
            (hardware.product; the same distribution). False: run the backend's own simulator.
        progress: show a tqdm bar over the executed parameter sets of evaluations that take long.

    Attributes:
        jobs_submitted, circuits_submitted: jobs and executed (packed) parameter sets so far.
        physical_qubits: the physical qubits of the last evaluation's packed slots.
        qubit_report: on a device, the last evaluation's qubits with their mean readout and
            sx/x errors next to the chip's medians (hardware.layout.calibration_report), else None.
        simulated_by: "qubit by qubit" or "backend": how the last evaluation ran.
    """

    name = "qiskit"

    def __init__(self, backend=None, *, shots: int | None = None, precision: float | None = None,
                 optimization_level: int = 1, seed: int | None = None, max_pub_size: int = 256,
                 max_circuits_per_job: int | None = None, threads: int | None = None, pack=None,
                 initial_layout=None, max_readout_error: float | None = None, mitigation: dict | None = None,
                 runtime_options: dict | None = None, mode: str | None = None, job_callback=None,
                 job_timeout: float | None = None, product_simulation: bool = True, progress: bool = True) -> None:
        try:
            from qiskit.primitives import BaseEstimatorV2
            from qiskit.providers import BackendV2
            from qiskit_aer import AerSimulator
        except ImportError as err:  # pragma: no cover - the test environment has qiskit
            raise ImportError('the "qiskit" evaluator needs qiskit and qiskit-aer: pip install "qkan-daruan[qiskit]"') from err
        check_int("shots", shots, 1, allow_none=True, high=_MAX_SHOTS)
        if precision is not None and check_number("precision", precision) < 1 / math.sqrt(_MAX_SHOTS):
            raise ValueError(f"`precision` must be a number >= {1 / math.sqrt(_MAX_SHOTS):.3g} (at most {_MAX_SHOTS:.0e} "
                             f"shots) or None; got {precision!r}")
        if shots is not None and precision is not None:
            raise ValueError(f"give `shots` or `precision`, not both; got shots={shots}, precision={precision}")
        check_int("optimization_level", optimization_level, low=0, high=3)
        check_int("seed", seed, 0, allow_none=True)
        check_int("max_pub_size", max_pub_size, 1)
        check_int("max_circuits_per_job", max_circuits_per_job, 1, allow_none=True)
        check_int("threads", threads, 1, allow_none=True)
        if backend is not None and not isinstance(backend, (BackendV2, BaseEstimatorV2)):
            raise ValueError(
                "`backend` must be None, a qiskit BackendV2 (AerSimulator, a fake or IBM backend) or an "
                f"EstimatorV2 instance; got {type(backend).__name__}"
            )
        if pack is not None and pack != "auto":
            check_int("pack", pack, 1)
        if initial_layout is not None and initial_layout != "auto":
            check_type("initial_layout", initial_layout, (list, tuple))
            for q in initial_layout:
                check_int("initial_layout qubit", q, 0)
            if len(set(initial_layout)) != len(initial_layout) or not initial_layout:
                raise ValueError(f"`initial_layout` must list distinct physical qubits; got {list(initial_layout)}")
        self.max_readout_error = check_number("max_readout_error", max_readout_error, 0.0, 1.0, allow_none=True)
        self.mitigation = parse_mitigation(mitigation)
        check_type("runtime_options", runtime_options, dict, allow_none=True)
        if mode is not None:
            check_choice("mode", mode, ("batch", "session"))
        self.job_timeout = check_number("job_timeout", job_timeout, allow_none=True)
        if self.job_timeout == 0:
            raise ValueError("`job_timeout` must be a number of seconds > 0 or None; got 0")
        check_bool("product_simulation", product_simulation)
        if job_callback is not None and not callable(job_callback):
            raise TypeError(f"`job_callback` must be callable(event, info) or None; got {type(job_callback).__name__}")
        self.backend, self.shots, self.seed = backend, shots, seed
        if shots is None and precision is not None:
            self.shots = math.ceil(1 / precision**2)
        self.precision = _shots_precision(shots) if shots is not None else precision
        self.optimization_level, self.threads = optimization_level, threads
        self.max_pub_size, self.max_circuits_per_job = int(max_pub_size), max_circuits_per_job
        self.pack, self.initial_layout = pack, None if initial_layout is None else (
            "auto" if initial_layout == "auto" else [int(q) for q in initial_layout])
        self.job_callback, self.progress = job_callback, progress
        self._rng = np.random.default_rng(seed)
        self._session = None
        self._target = None  # the BackendV2 circuits are transpiled for, or None
        if backend is None or isinstance(backend, AerSimulator):
            if runtime_options or mode:
                raise ValueError("`runtime_options` and `mode` are for qiskit-ibm-runtime backends (fake or IBM); "
                                 f"got backend {type(backend).__name__}")
            sim = AerSimulator(**({} if threads is None else {"max_parallel_threads": threads}))
            self._target = backend if backend is not None and backend.target.num_qubits else None
            self._executor = AerExecutor(backend if backend is not None else sim, self._rng, self.shots)
            noise = lambda: self._executor.noise_model  # noqa: E731
        else:
            estimator = self._make_estimator(backend, BackendV2, BaseEstimatorV2, runtime_options, mode)
            self._executor = EstimatorExecutor(estimator, self.precision, self.mitigation.readout,
                                               self.max_pub_size, self._reseed)
            noise = (lambda: _fake_noise_model(backend)) if _is_fake(backend) else None
        #: the qubit-by-qubit simulator of local backends (None: every job runs on the backend)
        self._product = ProductExecutor(noise, self._rng, self.shots) if product_simulation and noise else None
        self._seedable = backend is None or isinstance(backend, AerSimulator) or _is_fake(backend)
        self._check_device_size()
        self._packed: dict[tuple, Packed] = {}
        self._reports: dict[tuple, dict | None] = {}
        self._sizes: dict[int, tuple[int, list[int] | None]] = {}
        self.physical_qubits: list[int] = []
        self.qubit_report: dict | None = None
        self.simulated_by: str | None = None
        self.jobs_submitted = 0
        self.circuits_submitted = 0

    def _check_device_size(self) -> None:
        """`pack` and `initial_layout` must fit the device (a ValueError now, not a TranspilerError later)."""
        n = None if self._target is None else self._target.target.num_qubits
        if not n:
            return
        if isinstance(self.pack, int) and self.pack > n:
            raise ValueError(f"`pack` must be at most the {n} qubits of {self.backend_name!r}; got {self.pack}")
        if isinstance(self.initial_layout, list) and (len(self.initial_layout) > n or max(self.initial_layout) >= n):
            raise ValueError(f"`initial_layout` must list qubits 0..{n - 1} of {self.backend_name!r}; "
                             f"got {self.initial_layout}")

    # ------------------------------------------------------------------------ backends
    def _make_estimator(self, backend, BackendV2, BaseEstimatorV2, runtime_options, mode):
        """The EstimatorV2 for a non-Aer backend; sets self._target."""
        if isinstance(backend, BaseEstimatorV2):
            if mode:
                raise ValueError("`mode` needs a backend, not an estimator instance (make it with mode= yourself)")
            target = getattr(backend, "backend", None)
            if callable(target) and not isinstance(target, BackendV2):
                target = target()  # qiskit-ibm-runtime primitives: backend()
            self._target = target if isinstance(target, BackendV2) else None
            estimator = backend
        else:
            try:
                import qiskit_ibm_runtime as runtime
            except ImportError as err:  # pragma: no cover - the test environment has it
                raise ImportError(
                    'running on an IBM or fake backend needs qiskit-ibm-runtime: pip install "qkan-daruan[qiskit]"'
                ) from err
            self._target = backend
            if mode is not None:
                key = (id(backend), mode)
                if key not in _MODES or not getattr(_MODES[key], "_active", True):
                    _MODES[key] = (runtime.Batch if mode == "batch" else runtime.Session)(backend=backend)
                self._session = _MODES[key]
            estimator = runtime.EstimatorV2(mode=self._session or backend)
            if (self.mitigation.readout or self.mitigation.zne) and not _is_fake(backend):
                estimator.options.resilience_level = 0  # qkan mitigates: IBM's TREX (level 1) would correct twice
        if runtime_options:
            if not hasattr(estimator.options, "update"):
                raise ValueError(f"`runtime_options` needs a qiskit-ibm-runtime estimator; got {type(estimator).__name__}")
            estimator.options.update(**runtime_options)
        return estimator

    def close(self) -> None:
        """End the Batch or Session opened for ``mode``, shared by all layers on this backend (no-op otherwise)."""
        if self._session is not None:
            self._session.close()
            self._session = None

    @property
    def backend_name(self) -> str:
        """A readable name of the backend the jobs run on."""
        if self._target is not None:
            return str(self._target.name)
        if self.backend is not None:
            return type(self.backend).__name__
        return "aer_simulator (" + ("exact" if self.shots is None else f"{self.shots} shots, binomial") + ")"

    def _reseed(self) -> None:
        """Give the next estimator job a fresh simulator seed drawn from `seed` (local simulators only)."""
        if self.seed is None or not self._seedable:
            return
        options = self._executor.estimator.options
        s = int(self._rng.integers(2**31 - 1))
        if hasattr(options, "seed_simulator"):
            options.seed_simulator = s
        elif hasattr(options, "simulator"):  # qiskit-ibm-runtime with a fake backend (local mode)
            options.simulator.seed_simulator = s

    def _auto_layout(self, reps: int) -> list[int] | None:
        """The "auto" qubits (hardware.layout.auto_qubits), or None for the transpiler's choice."""
        layout = self.initial_layout
        explicit = layout == "auto" or (layout is None and self.max_readout_error is not None)
        if not explicit and not (layout is None and self.pack == "auto" and self._target is not None):
            return layout
        if self._target is None:
            raise ValueError("`initial_layout='auto'` and `max_readout_error` need a backend with calibration data "
                             "(a fake or IBM backend, or AerSimulator.from_backend); this one has no target")
        qubits = auto_qubits(self._target.target, reps, self.max_readout_error)
        if not qubits and explicit:
            raise ValueError(f"no qubit of {self.backend_name!r} has calibrated readout error <= "
                             f"{'the median' if self.max_readout_error is None else self.max_readout_error}")
        return qubits or None  # pack="auto" on a target without readout calibration: every qubit, placed by qiskit

    def _pack_size(self, reps: int) -> tuple[int, list[int] | None]:
        """(k, physical qubits or None for the transpiler's choice), chosen once per reps."""
        if reps not in self._sizes:
            self._sizes[reps] = self._choose_pack_size(reps)
        return self._sizes[reps]

    def _choose_pack_size(self, reps: int) -> tuple[int, list[int] | None]:
        """(k, physical qubits or None for the transpiler's choice) from pack and initial_layout."""
        layout = self._auto_layout(reps)
        local = self._target is None and isinstance(self._executor, AerExecutor)  # device-less Aer
        if self.pack is None:
            if layout is None and local:
                return _AER_PACK, None  # device-less Aer: qubits have no identity, 64 per circuit
            return 1, None if layout is None else layout[:1]
        if self.pack == "auto":
            if layout is not None:
                return len(layout), layout
            if self._target is not None:
                return self._target.target.num_qubits, None
            return (_AER_PACK if local else 1), None  # another estimator's width is unknown
        if layout is not None and len(layout) < self.pack and self.initial_layout == "auto" \
                and self.max_readout_error is None:  # the median rule gives way to an explicit pack
            layout += [q for q in rank_qubits(self._target.target, reps) if q not in layout]
        if layout is not None and len(layout) < self.pack:
            raise ValueError(f"`pack`={self.pack} needs {self.pack} qubits; `initial_layout` gives {len(layout)}")
        return self.pack, None if layout is None else layout[: self.pack]

    def _compiled(self, ansatz, reps: int, M: int) -> Packed:
        """The packed (ISA) circuit for M parameter sets (k <= M), compiled once per size."""
        k, layout = self._pack_size(reps)
        k = max(1, min(k, M))
        key = (ansatz.name, reps, k)
        if key not in self._packed:
            own_simulator = self._product is None and _is_fake(self._target)  # the fake's Aer runs the circuits
            if own_simulator and k > _WIDE and self._target.options.get("method", "automatic") == "automatic":
                self._target.set_options(method="matrix_product_state")  # wide product circuits in local mode
            self._packed[key] = pack_circuit(ansatz, reps, k, self._target, None if layout is None else layout[:k],
                                             self.optimization_level, self.seed)
            self._reports[key] = None if self._target is None else calibration_report(
                self._target.target, list(self._packed[key].physical), reps)
        self.qubit_report = self._reports[key]
        return self._packed[key]

    # ------------------------------------------------------------------------ jobs
    def run_values(self, layer, values: np.ndarray, stage: str = "forward") -> np.ndarray:
        """Expectation values of the layer's ansatz at many parameter sets, mitigated if asked.

        Args:
            values: (M, P) gate angles [theta (n_slots * k, slot-major), phi (R)], P = n_slots*k + R.
            stage: what the jobs are for, named in errors and callbacks ("forward", "backward").
        Returns:
            (M,) float64 <Z> values.
        """
        M = len(values)
        packed = self._compiled(layer.ansatz, layer.reps, M)
        self.physical_qubits = list(packed.physical)
        rows = pack_rows(np.asarray(values, dtype=np.float64), packed.k)  # (n, k P)
        m = self.mitigation
        product = self._product is not None and all(self._product.unsupported(packed, s) is None for s in m.scales)
        executor = self._product if product else self._executor
        per_job = self.max_circuits_per_job or len(rows)
        if self.max_circuits_per_job is None and self._seedable and not product and self.progress:
            # a local simulator gains nothing from one big job: split it so the bar moves in ~5% steps
            per_job = max(PROGRESS_MIN_ROWS, math.ceil(len(rows) / PROGRESS_STEPS))
        self.simulated_by = "qubit by qubit" if product else "backend"
        tasks = [executor.task(packed, scale, rows[a : a + per_job], m.repeats)
                 for scale in m.scales for a in range(0, len(rows), per_job)]
        results = run_tasks(tasks, backend=self.backend_name, stage=stage, layer=_layer_name(layer),
                            callback=self.job_callback, progress=self.progress, timeout=self.job_timeout)
        self.jobs_submitted += len(tasks)
        self.circuits_submitted += sum(t.circuits for t in tasks)
        S = len(m.scales)
        C = len(tasks) // S  # jobs per noise scale, in row order
        parts = [results[s * C : (s + 1) * C] for s in range(S)]
        raw = np.stack([np.concatenate([z for z, _ in part], axis=1) for part in parts])  # (S, repeats, n, k)

        def rates(i: int) -> np.ndarray:  # (S, n, k) readout rate i of each job, per row
            return np.stack([np.concatenate([np.broadcast_to(r[i], z.shape[1:]) for z, r in part]) for part in parts])

        return unpack_rows(m.apply(raw, rates(0), rates(1)), M)

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
    def backward(ctx, grad: torch.Tensor):
        if torch.is_grad_enabled():  # a graph of the gradient is requested: shift this node itself
            return _ShiftRule._graph_backward(ctx, grad)
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

    @staticmethod
    def _graph_backward(ctx, grad: torch.Tensor):
        """The parameter-shift gradients as a differentiable function of theta and the angles:
        each shifted evaluation is this node again, so every derivative order is exact (two jobs
        per gate angle per order, against one job for a whole first-order backward)."""
        theta, angles = ctx.saved_tensors

        def shifted(t: torch.Tensor, index: tuple) -> torch.Tensor:  # t with slot `index` (last dims) moved by +-_SHIFT
            step = torch.zeros_like(t)
            step[(..., *index)] = _SHIFT
            return step

        grads = []
        for k, t in ((2, theta), (3, angles)):
            if not ctx.needs_input_grad[k]:
                grads.append(None)
                continue
            slots = list(itertools.product(*map(range, t.shape[2:] if k == 2 else t.shape[3:])))
            columns = []
            for index in slots:
                step = shifted(t, index)
                args = (theta + step, angles) if k == 2 else (theta, angles + step)
                minus = (theta - step, angles) if k == 2 else (theta, angles - step)
                d = (_ShiftRule.apply(ctx.evaluator, ctx.layer, *args) - _ShiftRule.apply(ctx.evaluator, ctx.layer, *minus)) / 2
                g = grad * d  # (N, Ob, I): dL/d(slot) per sample and edge
                columns.append(g.sum(0).sum_to_size(t.shape[:2]) if k == 2 else g.sum_to_size(t.shape[:-1]))
            grads.append(torch.stack(columns, dim=-1).reshape(t.shape))
        return None, None, *grads
