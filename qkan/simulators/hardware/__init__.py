"""Running DARUAN edges on simulators and IBM hardware at the physical limit.

The Qiskit evaluator (qkan.simulators.qiskit) is built from these parts:

    shots       exact (noisy) expectations + binomial shot draws with readout error folded in
    layout      ranking a backend's physical qubits from its calibration (backend.target)
    packing     k independent edge circuits side by side on k physical qubits of one circuit
    mitigation  readout inversion, zero-noise extrapolation by unitary folding, repeats, clipping
    jobs        submitting split jobs concurrently, collecting them in order, callbacks, progress
    executors   Aer (exact values + binomial shots) and EstimatorV2 (sampled) execution of packed rows
    product     packed one-qubit circuits simulated qubit by qubit (local backends, the same distribution)
    tiling      several small circuits on disjoint, well-calibrated regions of one chip

Facts behind the choices: docs/hardware.md.
"""
