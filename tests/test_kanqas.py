"""KANQAS: environment encoding, masks, rewards, termination, tasks, Q-networks, agent, CLI."""

import argparse
import math

import numpy as np
import pytest
import torch

from qkan import kanqas
from qkan.kanqas import CircuitEnv, DDQNAgent, GroundState, MovingThreshold, Noise, StatePrep
from qkan.kanqas.qnets import BSplineKANLayer, make_q_network


def _action(env, name, qubits):
    return env.actions.index((name, tuple(qubits)))


def test_bell_observation_encoding_and_actions():
    env = CircuitEnv("bell")
    assert env.action_space.n == 2 * (2 + 4) == 12
    assert env.observation_space.shape == (6 * 7 * 2,)
    obs, info = env.reset(seed=0)
    assert not obs.any() and info["action_mask"].tolist() == [1] * 12
    obs, *_ = env.step(_action(env, "H", (0,)))
    obs, reward, terminated, truncated, info = env.step(_action(env, "CNOT", (0, 1)))
    t = obs.reshape(6, 7, 2)
    expected = np.zeros((6, 7, 2), np.float32)
    expected[0, 2 + 3, 0] = 1  # H (gate index 3) on qubit 0 in layer 0
    expected[1, 1, 0] = 1  # CNOT control 0 -> target 1 in layer 1: state[d][target][control]
    np.testing.assert_array_equal(t, expected)
    assert terminated and not truncated and info["success"]
    assert abs(info["fidelity"] - 1) < 1e-12 and reward == pytest.approx(50.0)
    assert info["n_gates"] == 2 and info["n_cnots"] == 1 and info["depth"] == 2


def test_first_free_layer_placement():
    env = CircuitEnv("ghz3")
    env.reset(seed=0)
    for name, q in [("X", (0,)), ("Y", (1,)), ("CNOT", (0, 2)), ("T", (1,))]:
        obs, *_ = env.step(_action(env, name, q))
    t = obs.reshape(12, 3 + 5, 3)
    assert t[0, 3 + 0, 0] == 1 and t[0, 3 + 1, 1] == 1  # X q0 and Y q1 share layer 0
    assert t[1, 2, 0] == 1  # CNOT 0 -> 2 in layer 1 (qubit 0 busy in layer 0)
    assert t[1, 3 + 4, 1] == 1  # T on q1 fits in layer 1
    assert t.sum() == 4


def test_mask_and_illegal_repeat_is_a_noop():
    env = CircuitEnv("bell")
    env.reset(seed=0)
    a = _action(env, "X", (1,))
    _, _, _, _, info = env.step(a)
    assert info["action_mask"][a] == 0 and info["action_mask"].sum() == 11
    _, reward, terminated, _, info = env.step(a)
    assert info["illegal"] and info["n_gates"] == 1 and not terminated
    assert reward == pytest.approx(0.0)  # X|00> = |01> has zero overlap with Bell


def test_rewards_and_termination_at_max_depth():
    env = CircuitEnv("bell")
    env.reset(seed=0)
    rewards = []
    seq = ["H", "Z", "H", "Z", "H", "Z"]  # H on qubit 0 alternating with Z: never entangles
    for k, g in enumerate(seq):
        _, r, terminated, truncated, info = env.step(_action(env, g, (0,)))
        rewards.append(r)
        assert terminated == (k == len(seq) - 1) and not truncated
    # F = |<Bell|psi>|^2: |+0>: 1/4; |-0>: 1/4; |10>: 0; -|10>: 0; -|-0>: 1/4; -|+0>: 1/4
    np.testing.assert_allclose(rewards, [0.25, 0.25, 0.0, 0.0, 0.25, 0.25], atol=1e-12)
    assert not info["success"]


def test_gymnasium_check_env_and_render():
    from gymnasium.utils.env_checker import check_env

    env = CircuitEnv("bell", render_mode="ansi")
    check_env(env, skip_render_check=True)
    env.reset(seed=1)
    env.step(_action(env, "H", (0,)))
    env.step(_action(env, "CNOT", (0, 1)))
    text = env.render()
    assert text.splitlines()[0].startswith("q0: ") and "H" in text and "@" in text and "X+" in text
    import gymnasium

    made = gymnasium.make("qkan/KANQAS-v0", task="ghz3")
    assert made.unwrapped.n_qubits == 3


def test_export_to_qiskit_and_pennylane_gives_same_state():
    import pennylane as qml
    from qiskit.quantum_info import Statevector

    task = StatePrep("ghz", 3)
    circuit = task.reference_circuit()
    circuit.append("RY", (2,), 0.3)
    circuit.append("T", (1,))
    ours = kanqas.statevector.run(circuit)[0].numpy()
    qnode = qml.QNode(lambda: (circuit.to_pennylane()(), qml.state())[1], qml.device("default.qubit", wires=3))
    np.testing.assert_allclose(np.asarray(qnode()), ours, atol=1e-12)
    sv = Statevector(circuit.to_qiskit()).reverse_qargs().data  # qiskit is little-endian
    np.testing.assert_allclose(sv, ours, atol=1e-12)


def test_noisy_threshold_is_relative_to_the_textbook_circuit():
    env = CircuitEnv("bell", noise=(0.3, 0.2))
    assert env.threshold == pytest.approx(0.98 * 0.85)
    env.reset(seed=0)
    env.step(_action(env, "H", (0,)))
    _, r, terminated, _, info = env.step(_action(env, "CNOT", (0, 1)))
    assert info["fidelity"] == pytest.approx(0.85) and terminated and info["success"]
    assert r == pytest.approx(50 * 0.85)


def test_custom_state_and_validation():
    task = StatePrep(np.array([1, 1j]) / math.sqrt(2))  # |+i>
    env = CircuitEnv(task, max_depth=3)
    env.reset(seed=0)
    env.step(_action(env, "H", (0,)))
    _, r, terminated, _, info = env.step(_action(env, "T", (0,)))
    assert info["fidelity"] == pytest.approx(math.cos(math.pi / 8) ** 2, abs=1e-12)
    assert not terminated and r == pytest.approx(info["fidelity"])
    _, _, terminated, _, info = env.step(_action(env, "H", (0,)))
    assert terminated  # third step = max depth
    with pytest.raises(ValueError, match="`target` must be 'bell', 'ghz'"):
        StatePrep("w")
    with pytest.raises(ValueError, match="`max_depth` must be an int >= 1"):
        CircuitEnv("bell", max_depth=0)
    with pytest.raises(ValueError, match="`noise` must be None"):
        CircuitEnv("bell", noise=0.1)
    with pytest.raises(ValueError, match="`task` must be"):
        CircuitEnv("h3")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"`action` must be an int in \[0, 5\)"):
        env.step(5)  # one qubit: no CNOTs, 5 single-qubit gates


def test_h2_hamiltonian_ground_energy():
    task = GroundState("h2")
    # FCI energy of H2 / STO-3G at 0.7414 Angstrom (e.g. Kandala et al. 2017; OpenFermion's H2 data)
    assert task.exact_energy == pytest.approx(-1.137270, abs=2e-6)
    assert task.n_qubits == 4 and task.initial_bits == (1, 1, 0, 0)
    assert float(task.energy(kanqas.Circuit(4, initial_bits=(1, 1, 0, 0)))[0]) == pytest.approx(-1.116684, abs=2e-6)
    assert task.start_energy == pytest.approx(-1.116684, abs=2e-6)


def test_molecules_start_far_from_exact():
    # honest chemistry: Hartree-Fock is at least 10x chemical accuracy from the exact energy
    for name, qubits in (("h2", 4), ("lih", 3), ("lih6", 6)):
        task = GroundState(name)
        assert task.n_qubits == qubits
        assert task.start_energy - task.exact_energy >= 10 * kanqas.CHEMICAL_ACCURACY
    assert GroundState("h2").initial_bits == (1, 1, 0, 0)
    assert GroundState("lih6").initial_bits == (1, 1, 0, 0, 0, 0)
    lih6 = GroundState("lih6")
    assert lih6.exact_energy == pytest.approx(-7.727093, abs=1e-5)  # LiH 3.0 A, STO-3G, 2e in 3 orbitals


def test_tapered_lih_keeps_the_spectrum_and_hartree_fock_state():
    # tapering is exact: the 3-qubit "lih" has the 6-qubit one's ground energy, and its lowest
    # basis state (the task's start) is PennyLane's tapered Hartree-Fock state with the same energy
    from pennylane import qchem

    from qkan.kanqas.ground_state import MOLECULES, molecule_hamiltonian

    lih, lih6 = GroundState("lih"), GroundState("lih6")
    assert lih.exact_energy == pytest.approx(lih6.exact_energy, abs=1e-10)
    assert lih.start_energy == pytest.approx(lih6.start_energy, abs=1e-10)
    full = molecule_hamiltonian("lih6")
    sector = np.linalg.eigvalsh(molecule_hamiltonian("lih"))
    assert np.all(np.isin(np.round(sector, 8), np.round(np.linalg.eigvalsh(full), 8)))  # a sub-spectrum
    mol = MOLECULES["lih"]
    op, n = qchem.molecular_hamiltonian(list(mol.symbols), np.array(mol.coordinates), unit="angstrom",
                                        active_electrons=mol.active_electrons, active_orbitals=mol.active_orbitals)
    generators = qchem.symmetry_generators(op)
    paulix = qchem.paulix_ops(generators, n)
    hf = qchem.taper_hf(generators, paulix, qchem.optimal_sector(op, generators, 2), 2, n)
    assert lih.initial_bits == tuple(int(b) for b in hf)


def test_ground_state_rewards_with_user_hamiltonian():
    # H = -Z0 - Z1 + 0.5 X0 X1; start |00> (the lowest diagonal entry)
    z, x, i2 = np.diag([1.0, -1.0]), np.array([[0.0, 1.0], [1.0, 0.0]]), np.eye(2)
    ham = -np.kron(z, i2) - np.kron(i2, z) + 0.5 * np.kron(x, x)
    task = GroundState(ham, restarts=4)
    assert task.initial_bits == (0, 0)
    assert task.exact_energy == pytest.approx(-math.sqrt(4 + 0.25))
    env = CircuitEnv(task, max_depth=3, threshold=1e-6)
    assert env.observation_space.shape == (3 * (2 + 6) * 2,)
    obs, info = env.reset(seed=0)
    e0 = info["energy"]
    assert e0 == pytest.approx(-2.0)
    _, r, terminated, _, info = env.step(_action(env, "RY", (0,)))
    assert info["energy"] <= e0 + 1e-12 and not terminated
    assert -1 <= r <= 1 and r == pytest.approx((e0 - info["energy"]) / abs(e0 - task.exact_energy))
    _, r, _, _, info = env.step(_action(env, "CNOT", (0, 1)))
    assert info["success"] and r == 5.0  # RY + CNOT reaches cos|00> + sin|11>: the exact ground state
    env.reset(seed=0)
    for name, q in [("RZ", (0,)), ("RZ", (1,)), ("RX", (0,))]:
        obs, r, terminated, _, info = env.step(_action(env, name, q))
    assert terminated and not info["success"] and r == -5.0
    angles = obs.reshape(3, 8, 2)[:, 2 + 3:, :]
    assert np.all(np.abs(angles) <= math.pi)


@pytest.mark.parametrize("optimizer", ["lbfgs", "cobyla"])
def test_angle_optimisers_reach_the_structure_optimum(optimizer):
    task = GroundState("h2", optimizer=optimizer)
    circuit = kanqas.Circuit(4, initial_bits=task.initial_bits)
    for name, q in [("RY", (2,)), ("CNOT", (2, 3)), ("CNOT", (2, 0)), ("CNOT", (3, 1))]:
        circuit.append(name, q)
    e = task.optimize(circuit, rng=np.random.default_rng(0))
    # this structure reaches exactly cos t |1100> + sin t |0011>: the exact H2 ground energy
    assert e == pytest.approx(task.exact_energy, abs=1e-5)


def test_bspline_kan_bases_match_scipy():
    from scipy.interpolate import BSpline

    layer = BSplineKANLayer(1, 1, grid=5, k=3).double()
    x = torch.linspace(-0.99, 0.99, 37, dtype=torch.float64)[:, None]
    ours = layer.bases(x)[:, 0, :].numpy()
    t = layer.knots[0].double().numpy()
    for m in range(ours.shape[1]):
        ref = BSpline.basis_element(t[m:m + 5], extrapolate=False)(x[:, 0].numpy())
        np.testing.assert_allclose(ours[:, m], np.nan_to_num(ref), atol=1e-12)
    np.testing.assert_allclose(ours.sum(1), 1.0, atol=1e-12)  # partition of unity inside the grid


@pytest.mark.parametrize("kind", ["qkan", "kan", "mlp"])
def test_q_networks_shapes(kind):
    net = make_q_network(kind, 84, 12, seed=0)
    assert net(torch.zeros(5, 84)).shape == (5, 12)
    with pytest.raises(ValueError, match="`q_network` must be one of"):
        make_q_network("cnn", 84, 12)


def test_curriculum_moves_threshold():
    cur = MovingThreshold(0.1, final=1e-3, shrink=0.5, patience=2, reset_every=5, margin=0.01)
    assert cur.update(True, 0.05) == 0.1
    assert cur.update(True, 0.04) == 0.05
    assert cur.update(False, 0.2) == 0.05
    cur.update(True, 0.03)
    assert cur.update(True, 0.02) == pytest.approx(0.03)  # reset at episode 5: best 0.02 + margin
    for _ in range(5):
        threshold = cur.update(False, 0.5)
    assert threshold == pytest.approx(0.03)  # reset again (episode 10): best + margin
    assert MovingThreshold(0.05, reset_every=1, margin=1.0).update(False, 0.2) == 0.05  # capped at start
    with pytest.raises(ValueError, match="`shrink` must be in"):
        MovingThreshold(shrink=1.5)


def test_agent_finds_bell_and_checkpoint_resumes(tmp_path):
    env = CircuitEnv("bell")
    agent = DDQNAgent(env, q_network="mlp", seed=0, batch_size=64, buffer_size=2000, eps_decay=0.99,
                      target_update=20, lr=5e-3, n_step=1, loss="smooth_l1")  # the published update rule
    history = agent.train(120, progress=False, checkpoint=tmp_path / "ckpt.pt", checkpoint_every=60)
    assert len(history["reward"]) == 120 and sum(history["success"]) >= 10
    best = agent.best_circuit()
    assert best.n_cnots == 1 and best.n_gates == 2
    greedy = agent.evaluate()
    assert greedy["success"] and greedy["circuit"].n_gates == 2
    # resume: a fresh agent loaded from the checkpoint continues exactly like the original
    agent.train(5, progress=False)
    clone = DDQNAgent(CircuitEnv("bell"), q_network="mlp", seed=0, batch_size=64, buffer_size=2000,
                      eps_decay=0.99, target_update=20, lr=5e-3, n_step=1, loss="smooth_l1").load(tmp_path / "ckpt.pt")
    assert clone.episode == 120
    clone.train(5, progress=False)
    assert clone.history["reward"] == agent.history["reward"]


def test_qkan_agent_learns_bell():
    env = CircuitEnv("bell")
    agent = DDQNAgent(env, q_network="qkan", seed=0, eps_decay=0.99)  # default QKAN Q-network
    history = agent.train(100, progress=False)
    assert agent.best_circuit().n_cnots == 1 and agent.best["success"]
    assert sum(history["success"][-20:]) >= 10 and agent.evaluate()["success"]  # random: ~1 in 20


def test_cli_search_runs(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from qkan.kanqas.cli import add_parser

    parser = argparse.ArgumentParser(prog="qkan")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["search", "--task", "bell", "--q-network", "mlp", "--episodes", "40",
                              "--seed", "0", "--no-progress", "--batch-size", "32"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "fidelity" in out and "cnots" in out and "q0: " in out
    with pytest.raises(SystemExit):
        parser.parse_args(["search", "--task", "h3"])


def test_validation_messages():
    from qkan.kanqas.ground_state import molecule_hamiltonian

    with pytest.raises(ValueError, match="`optimizer` must be one of"):
        GroundState(np.eye(2), optimizer="adam")
    with pytest.raises(ValueError, match="`maxiter` must be an int >= 1"):
        GroundState(np.eye(2), maxiter=0)
    with pytest.raises(ValueError, match="`hamiltonian` must be Hermitian"):
        GroundState(np.array([[0.0, 1.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match=r"`hamiltonian` must be a \(2\^n, 2\^n\) matrix"):
        GroundState(np.eye(3))
    with pytest.raises(ValueError, match="`initial` must be 'hf', 'zero' or 1 bits"):
        GroundState(np.eye(2), initial=(0, 1))
    with pytest.raises(ValueError, match="`name` must be one of"):
        molecule_hamiltonian("h2o")
    with pytest.raises(ValueError, match=r"`threshold` must be a number in \(0, 1\]"):
        StatePrep("bell", threshold=1.5)
    with pytest.raises(ValueError, match="`n_qubits` must be 2 for 'bell'"):
        StatePrep("bell", n_qubits=3)
    with pytest.raises(TypeError, match="`env` must be a gymnasium.Env with the CircuitEnv interface"):
        DDQNAgent("bell")
    with pytest.raises(ValueError, match="`batch_size` must be an int >= 1"):
        DDQNAgent(CircuitEnv("bell"), batch_size=0)
    with pytest.raises(ValueError, match=r"`eps_decay` must be a number in \(0, 1\]"):
        DDQNAgent(CircuitEnv("bell"), eps_decay=1.5)
    with pytest.raises(ValueError, match="`n_step` must be an int >= 1"):
        DDQNAgent(CircuitEnv("bell"), n_step=0)
    with pytest.raises(ValueError, match="`learning_starts` must be an int >= 1"):
        DDQNAgent(CircuitEnv("bell"), learning_starts=0)
    with pytest.raises(ValueError, match="`loss` must be one of"):
        DDQNAgent(CircuitEnv("bell"), loss="l2")
    with pytest.raises(TypeError, match="`q_network` must be 'qkan', 'kan', 'mlp' or a torch module"):
        DDQNAgent(CircuitEnv("bell"), q_network=3)
    with pytest.raises(ValueError, match="`episodes` must be an int >= 0"):
        DDQNAgent(CircuitEnv("bell"), q_network="mlp").train(-1)
    with pytest.raises(ValueError, match="`start` must be >= `final` > 0"):
        MovingThreshold(1e-4)
    with pytest.raises(ValueError, match="`p2` must be a number in \\[0, 1\\]"):
        Noise(0.1, -0.1)


def test_import_without_gymnasium_names_the_extra():
    import subprocess
    import sys

    code = ("import sys; sys.modules['gymnasium'] = None\n"
            "try:\n    from qkan import kanqas\nexcept ImportError as err:\n    print(err)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    assert 'pip install "qkan-daruan[kanqas]"' in out


def test_bspline_grid_update_follows_samples_and_keeps_the_function():
    from qkan.kanqas.qnets import BSplineKAN

    torch.manual_seed(0)
    layer = BSplineKANLayer(3, 4, seed=0).double()
    with torch.no_grad():
        layer.spline_weight.normal_()  # a non-trivial function
    x = torch.rand(400, 3, dtype=torch.float64) * 1.6 - 0.8
    before = layer(x)
    layer.update_grid(x)
    assert layer.knots[:, layer.k].max() < -0.75 and layer.knots[:, -layer.k - 1].min() > 0.75  # grid follows the data
    np.testing.assert_allclose(layer.bases(x).sum(-1).numpy(), 1.0, atol=1e-9)  # samples inside every grid
    assert (layer(x) - before).abs().max() < 0.03 * before.abs().max()  # least-squares refit on the new grid
    net = BSplineKAN([3, 4, 2], grid_update=True, seed=0)
    binary = (torch.rand(64, 3) < 0.3).float()  # KANQAS-like inputs: two distinct values per input
    net.update_grid(binary)
    assert torch.isfinite(net(binary)).all()


def test_grid_update_runs_in_the_agent_and_fixed_grids_cover_the_observations():
    env = CircuitEnv("bell")
    agent = DDQNAgent(env, q_network="kan", network_options={"grid_update": True}, seed=0, batch_size=16)
    knots = agent.q.layers[0].knots.clone()
    assert knots[0, 3] == 0.0 and knots[0, -4] == 1.0  # first grid spans the observation range [0, 1]
    agent.train(25, progress=False)
    assert agent.updates >= agent.target_update and not torch.equal(knots, agent.q.layers[0].knots)
    assert torch.equal(agent.q.layers[0].knots, agent.target.layers[0].knots)
    ground = make_q_network("kan", 10, 4, input_range=(-math.pi, math.pi))
    assert ground.layers[0].knots[0, 3] == pytest.approx(-math.pi)


def test_qkan_q_network_edge_weights_are_fan_in_scaled():
    net = make_q_network("qkan", 84, 12, seed=0)
    assert net.width == [84, 16, 12]
    torch.testing.assert_close(net.layers[0].post_weight, torch.full((16, 84), 84**-0.5))
    torch.testing.assert_close(net.layers[1].post_weight, torch.full((12, 16), 16**-0.5))
    assert net.layers[0].post_init == "fan_in"
    plain = make_q_network("qkan", 84, 12, seed=0, post_init="ones")
    assert torch.equal(plain.layers[0].post_weight, torch.ones(16, 84))


def test_ground_state_remembers_optimised_structures(monkeypatch):
    task = GroundState("h2", restarts=2)
    calls = []
    original = GroundState.optimize
    monkeypatch.setattr(GroundState, "optimize", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    env = CircuitEnv(task, max_depth=3)
    seq = [("RY", (2,)), ("CNOT", (2, 3)), ("RX", (0,))]
    runs = []
    for episode in range(2):
        env.reset(seed=episode)
        runs.append([env.step(_action(env, *g))[4]["energy"] for g in seq])
        runs[-1].append(env.circuit.angles.copy())
    assert len(calls) == 3  # the second episode re-used all three optimised prefixes
    assert runs[0][:3] == runs[1][:3] and np.array_equal(runs[0][3], runs[1][3])
    fresh = GroundState("h2", restarts=2, cache_size=0)
    env = CircuitEnv(fresh, max_depth=3)
    for episode in range(2):
        env.reset(seed=episode)
        for g in seq:
            env.step(_action(env, *g))
    assert len(calls) == 9 and not fresh._optimized
