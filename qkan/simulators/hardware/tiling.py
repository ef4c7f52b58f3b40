"""Several small circuits side by side on disjoint, well-calibrated, connected regions of one chip.

A chip of 127 qubits runs a 2-qubit Bell circuit on 2 of them; tiling puts many small circuits
(copies of one, or KANQAS candidates) into one executed circuit, each on its own region, and
splits the counts back per circuit. Regions are chosen on the chip's "auto" qubits
(hardware.layout.auto_qubits: readout error at or below the chip median, no gate outliers)
by subgraph isomorphism of each circuit's two-qubit interaction graph into the free part of
the coupling graph, so no routing is needed and no gate touches another region: the circuits
are independent and each one's counts are distributed as in a separate run on its region
(up to crosstalk, which device noise models do not carry).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qkan.simulators.hardware.executors import sampler_for
from qkan.simulators.hardware.layout import auto_qubits, qubit_calibration

__all__ = ["Tiling", "tile_circuits", "run_tiled"]


@dataclass(frozen=True)
class Tiling:
    """Circuits placed on one chip.

    Attributes:
        circuit: the combined ISA circuit; circuit i measures into classical register "c{i}".
        regions: physical qubits of each circuit, in the circuit's qubit order.
    """

    circuit: object
    regions: tuple[tuple[int, ...], ...]

    def split(self, pub_result) -> list[dict[str, int]]:
        """A sampler PUB result of `circuit` -> counts per input circuit (its clbit order)."""
        return [getattr(pub_result.data, f"c{i}").get_counts() for i in range(len(self.regions))]


def _interaction_graph(circuit):
    import rustworkx as rx

    graph = rx.PyGraph()
    graph.add_nodes_from(range(circuit.num_qubits))
    for instruction in circuit.data:
        qubits = [circuit.find_bit(q).index for q in instruction.qubits]
        if len(qubits) > 2 and instruction.operation.name != "barrier":
            raise ValueError(f"tile_circuits places one- and two-qubit gates; {instruction.operation.name!r} "
                             f"acts on {len(qubits)} qubits")
        if len(qubits) == 2 and not graph.has_edge(*qubits):
            graph.add_edge(qubits[0], qubits[1], None)
    return graph


def _region(free: list[int], edges: set[tuple[int, int]], circuit, readout: np.ndarray, tries: int) -> list[int] | None:
    """Physical qubits (in circuit qubit order) of a free region whose coupling covers the circuit's gates."""
    import rustworkx as rx

    chip = rx.PyGraph()
    chip.add_nodes_from(free)
    index = {q: i for i, q in enumerate(free)}
    for a, b in edges:
        if a in index and b in index and not chip.has_edge(index[a], index[b]):
            chip.add_edge(index[a], index[b], None)
    best, best_score = None, np.inf
    mappings = rx.vf2_mapping(chip, _interaction_graph(circuit), subgraph=True, induced=False, call_limit=10**6)
    for _, mapping in zip(range(tries), mappings):  # mapping: chip node -> circuit qubit
        region = [0] * circuit.num_qubits
        for node, qubit in mapping.items():
            region[qubit] = free[node]
        score = float(readout[region].sum())
        if score < best_score:
            best, best_score = region, score
    return best


def tile_circuits(circuits: list, backend, *, max_readout_error: float | None = None,
                  optimization_level: int = 1, seed: int | None = None, tries: int = 64) -> Tiling:
    """Place measured circuits on disjoint, well-calibrated, coupling-connected regions of `backend`.

    Args:
        circuits: qiskit QuantumCircuits with measurements, one- and two-qubit gates.
        backend: a BackendV2 with a coupling map and calibration (fake or IBM).
        max_readout_error: the regions' readout threshold (None: the chip median).
        optimization_level, seed: for transpiling each circuit onto its region.
        tries: candidate regions compared per circuit (the lowest summed readout error wins).
    Returns:
        Tiling (larger circuits are placed first; regions keep the input order).
    Raises:
        ValueError: a circuit does not fit the remaining good qubits.
    """
    from qiskit import ClassicalRegister, QuantumCircuit
    from qiskit.transpiler import generate_preset_pass_manager

    target = backend.target
    good = auto_qubits(target, 1, max_readout_error)
    readout = np.nan_to_num(qubit_calibration(target)["readout"], nan=1.0)
    edges = {tuple(sorted(e)) for e in target.build_coupling_map().get_edges()} if target.build_coupling_map() else set()
    free, regions = list(good), [None] * len(circuits)
    for i in sorted(range(len(circuits)), key=lambda i: -circuits[i].num_qubits):
        region = _region(free, edges, circuits[i], readout, tries)
        if region is None:
            raise ValueError(f"circuit {i} ({circuits[i].num_qubits} qubits) does not fit the {len(free)} free "
                             f"well-calibrated qubits of {backend.name!r}; tile fewer circuits or raise max_readout_error")
        regions[i] = region
        free = [q for q in free if q not in region]
    combined = QuantumCircuit(target.num_qubits)
    for i, (circuit, region) in enumerate(zip(circuits, regions)):
        pm = generate_preset_pass_manager(optimization_level=optimization_level, backend=backend,
                                          initial_layout=region, seed_transpiler=seed)
        isa = pm.run(circuit)
        used = {isa.find_bit(q).index for inst in isa.data if inst.operation.name != "barrier" for q in inst.qubits}
        if not used <= set(region):  # cannot happen when the region covers every gate; a safety net
            raise ValueError(f"circuit {i} left its region {region} when transpiled (qubits {sorted(used)})")
        creg = ClassicalRegister(circuit.num_clbits, f"c{i}")
        combined.add_register(creg)
        combined.compose(isa, qubits=range(target.num_qubits), clbits=creg, inplace=True)
    return Tiling(combined, tuple(tuple(int(q) for q in r) for r in regions))


def run_tiled(circuits: list, backend, *, shots: int = 4000, seed: int | None = None, **options) -> list[dict[str, int]]:
    """Run tiled circuits in one job and return each circuit's counts (see tile_circuits for options)."""
    tiling = tile_circuits(circuits, backend, seed=seed, **options)
    result = sampler_for(backend, shots, seed).run([tiling.circuit]).result()
    return tiling.split(result[0])
