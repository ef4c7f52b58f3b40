"""KANQAS: quantum architecture search by double DQN with a QKAN, KAN or MLP Q-network.

    from qkan import kanqas
    env = kanqas.CircuitEnv(task=kanqas.StatePrep("ghz", n_qubits=3), max_depth=12)
    agent = kanqas.DDQNAgent(env, q_network="qkan", seed=0)
    agent.train(500); print(agent.best_circuit())
    runs = kanqas.search_seeds("bell", range(10), episodes=300, jobs=2)  # seeds in worker processes

A new search target is a ``kanqas.Task`` subclass (an abstract base class; ``kanqas.FidelityTask``
for state preparation needs only ``fidelity``) plus ``kanqas.register_task(name, factory)``.
Needs gymnasium (and pennylane for molecular Hamiltonians): pip install "qkan-daruan[kanqas]".
References: Kundu, Sarkar, Sadhu, arXiv 2406.17630; Patel, Kundu et al., arXiv 2402.03500.
"""

try:
    import gymnasium  # noqa: F401
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError('qkan.kanqas needs gymnasium: pip install "qkan-daruan[kanqas]"') from err

from qkan.kanqas import tasks
from qkan.kanqas.agent import DDQNAgent, ReplayBuffer
from qkan.kanqas.circuit import Circuit, Instruction
from qkan.kanqas.curriculum import MovingThreshold
from qkan.kanqas.env import CircuitEnv
from qkan.kanqas.ground_state import CHEMICAL_ACCURACY, MOLECULES, GroundState
from qkan.kanqas.parallel import search_seeds
from qkan.kanqas.qnets import MLP, BSplineKAN, make_q_network
from qkan.kanqas.state_prep import StatePrep
from qkan.kanqas.statevector import MAX_QUBITS, Noise
from qkan.kanqas.tasks import FidelityTask, Task, available_tasks, make_task, register_task

__all__ = [
    "BSplineKAN", "CHEMICAL_ACCURACY", "Circuit", "CircuitEnv", "DDQNAgent", "FidelityTask", "GroundState", "Instruction", "MLP",
    "MovingThreshold", "Noise", "ReplayBuffer", "StatePrep", "Task", "available_tasks", "make_q_network",
    "make_task", "register_task", "search_seeds", "tasks",
]

# built-in tasks
register_task("bell", lambda: StatePrep("bell"))
for _n in range(2, MAX_QUBITS + 1):
    register_task(f"ghz{_n}", lambda n=_n: StatePrep("ghz", n))
for _name in MOLECULES:
    register_task(_name, lambda name=_name: GroundState(name))
