"""The density engine against Qiskit's references: Aer's density-matrix simulation with the same
noise model on the same ISA circuit, the statevector engine at noise scale 0, and finite
differences for gradients. Three fake backends with different two-qubit gates (cx, cz, ecr)."""

import itertools

import numpy as np
import pytest
import torch
from qiskit.quantum_info import DensityMatrix, SparsePauliOp

from qkit.circuits import build_circuit, list_circuits
from qkit.engines.base import LayerProgram
from qkit.engines.density import DensityEngine
from qkit.engines.density_blocks import embed
from qkit.engines.density_suffix import readout_rows
from qkit.engines.density_walk import ClosedFormRuns, LayerWalk, kron_factors
from qkit.engines.ptm import pauli_basis, ptm
from qkit.engines.statevector import StatevectorEngine
from qkit.errors import QkitError
from qkit.noise.model import NoiseScales, device_noise

from test_quantum import random_circuit

BACKENDS = ("fake_lagos", "fake_torino", "fake_sherbrooke")  # cx, cz, ecr
# The 127-133-qubit devices take seconds to set up: the fast tier keeps fake_lagos.
TIERED = [BACKENDS[0]] + [pytest.param(b, marks=pytest.mark.slow) for b in BACKENDS[1:]]


def program(name="dressed", n=4, depth=1, **options):
    spec = build_circuit(name, n, depth, **options)
    return LayerProgram(spec.circuit, tuple(spec.inputs), tuple(spec.weights), tuple(spec.observables))


def rows(prog, n=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, len(prog.inputs)))
    w = rng.normal(0, 0.4, len(prog.weights))
    return torch.tensor(x), torch.tensor(w)


def aer_reference(engine, x, w):
    """Aer density matrix of the bound ISA circuit (gate noise), then the readout confusion:
    probabilities for Z-only terms, the per-qubit readout expansion for X/Y terms."""
    from qiskit_aer import AerSimulator

    sim = AerSimulator(method="density_matrix", noise_model=engine.noise.noise_model())
    params = list(engine.program.inputs) + list(engine.program.weights)
    out = []
    for sample in x.numpy():
        bind = dict(zip(params, list(sample) + list(w.numpy())))
        qc = engine.isa_circuit.assign_parameters({p: bind[p] for p in engine.isa_circuit.parameters})
        qc.save_density_matrix(qubits=engine.active_qubits)
        rho = DensityMatrix(np.asarray(sim.run(qc).result().data(0)["density_matrix"]))
        out.append([_value(engine, rho, terms) for terms in engine._terms])
    return np.array(out)


def _value(engine, rho, terms):
    total = 0.0
    for digits, coeff in terms:
        if all(d == 3 for _, d in digits):  # Z only: readout on the probabilities
            probs = rho.probabilities()
            for q, _ in digits:  # confusion of each read qubit, exactly
                p01, p10 = engine.noise.readout.get(engine.active_qubits[q], (0.0, 0.0))
                probs = probs.reshape(-1, 2, 2**q)
                probs = np.stack(
                    [(1 - p10) * probs[:, 0] + p01 * probs[:, 1], p10 * probs[:, 0] + (1 - p01) * probs[:, 1]], axis=1
                ).reshape(-1)
            outcomes = np.arange(len(probs))
            mask = sum(1 << q for q, _ in digits)
            total += coeff * float(np.sum(probs * (1.0 - 2.0 * (np.bitwise_count(outcomes & mask) & 1))))
            continue
        for subset in itertools.product((False, True), repeat=len(digits)):
            weight, label = coeff, ["I"] * engine.k
            for keep, (q, d) in zip(subset, digits):
                p01, p10 = engine.noise.readout.get(engine.active_qubits[q], (0.0, 0.0))
                weight *= (1 - p01 - p10) if keep else (p01 - p10)
                if keep:
                    label[engine.k - 1 - q] = "IXYZ"[d]
            total += weight * float(np.real(rho.expectation_value(SparsePauliOp("".join(label)))))
    return total


# ---------------------------------------------------------------------- pieces
def test_pauli_transfer_matrices_follow_qiskit_order():
    rng = np.random.default_rng(3)
    u = np.linalg.qr(rng.normal(size=(4, 4)) + 1j * rng.normal(size=(4, 4)))[0]
    basis = pauli_basis(2)
    mine = np.real(np.einsum("iab,bc,jcd,ad->ij", basis, u, basis, u.conj())) / 4
    np.testing.assert_allclose(mine, ptm(u, 2), atol=1e-12)
    assert basis.shape == (16, 4, 4)
    np.testing.assert_allclose(basis[1 + 4 * 3], np.kron(np.diag([1, -1]), [[0, 1], [1, 0]]))  # Z1 X0


def test_rz_closed_form_equals_the_general_ptm_path():
    """ISA circuits' only parametric gate is RZ, whose PTMs come in closed form; the general path
    (any gate's unitary through ``ptm_map``) must give the same values and gradients."""
    prog = program("strongly_entangling", depth=2)
    x, w = rows(prog, n=4, seed=4)
    results = []
    for closed_form in (True, False):
        engine = DensityEngine(prog, torch.float64, backend="fake_lagos")
        assert engine._rz  # every ISA angle is an RZ
        if not closed_form:
            engine._rz = frozenset()
        wi = w.clone().requires_grad_(True)
        out = engine.execute(x, wi)
        out.sum().backward()
        results.append((out.detach(), wi.grad))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


@pytest.mark.parametrize("backend", TIERED)
def test_scale_one_is_aers_own_noise_model(backend):
    from qiskit.quantum_info import SuperOp
    from qiskit_aer.noise.device.models import basic_device_gate_errors

    from qkit.hardware.backends import resolve_backend

    target = resolve_backend(backend).backend.target
    qubits = {0, 1, 2, 3, 4, 5, 6}
    aer = {(n, tuple(q)): e for n, q, e in basic_device_gate_errors(target=target) if set(q) <= qubits}
    mine = device_noise(target, {}, NoiseScales(), qubits).errors
    assert set(mine) == set(aer)
    assert max(np.abs(SuperOp(aer[k]).data - SuperOp(mine[k]).data).max() for k in aer) < 1e-12


# ---------------------------------------------------------------------- against Aer
@pytest.mark.parametrize("backend", TIERED)
def test_dressed_equals_aer_density_matrix_with_the_same_noise(backend):
    prog = program()
    engine = DensityEngine(prog, torch.float64, backend=backend)
    x, w = rows(prog)
    np.testing.assert_allclose(engine.execute(x, w).numpy(), aer_reference(engine, x, w), atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list_circuits())
def test_every_builtin_circuit_equals_aer(backend, name):
    prog = program(name)
    engine = DensityEngine(prog, torch.float64, backend=backend, scale=1.5)  # scaled noise too
    x, w = rows(prog, seed=1)
    np.testing.assert_allclose(engine.execute(x, w).numpy(), aer_reference(engine, x, w), atol=1e-6)


def _small_random_programs(count=5, max_qubits=4):
    found, seed = [], 0
    while len(found) < count:
        qc, x, w, obs = random_circuit(seed)
        if qc.num_qubits <= max_qubits:
            found.append((seed, LayerProgram(qc, tuple(x), tuple(w), tuple(obs))))
        seed += 1
    return found


@pytest.mark.slow
@pytest.mark.parametrize("seed, prog", _small_random_programs())
def test_random_circuits_with_mixed_pauli_observables_equal_aer(seed, prog):
    backend = BACKENDS[seed % 3]
    engine = DensityEngine(prog, torch.float64, backend=backend, layout="default")
    x, w = rows(prog, n=2, seed=seed)
    np.testing.assert_allclose(engine.execute(x, w).numpy(), aer_reference(engine, x, w), atol=1e-6)


def _deep_mixed_program():
    """Weight-only layers of unequal runs (RX on some qubits, RZ RY on others: no stacked chain)
    and a two-qubit gate with a free angle (RZZ(w): a ``step`` segment) after the inputs."""
    from qiskit.circuit import ParameterVector, QuantumCircuit

    x, w = ParameterVector("x", 3), ParameterVector("w", 12)
    qc = QuantumCircuit(3)
    for k in range(3):
        qc.ry(x[k], k)
    for layer in range(2):
        qc.cx(0, 1)
        qc.cx(1, 2)
        qc.rx(w[6 * layer], 0)
        qc.rz(w[6 * layer + 1], 1)
        qc.ry(w[6 * layer + 2], 1)
        qc.rx(w[6 * layer + 3], 2)
        qc.rzz(w[6 * layer + 4], 0, 2)
        qc.ry(w[6 * layer + 5], 0)
    obs = [SparsePauliOp(["ZII", "IXZ"], [0.6, -0.4]), SparsePauliOp("YIZ")]
    return LayerProgram(qc, tuple(x), tuple(w), tuple(obs))


@pytest.mark.parametrize("case", ["dressed-d4", "strongly_entangling-d3", "mixed"])
def test_suffix_layers_equal_aer_and_finite_differences(case):
    """The suffix planned as constant blocks and Kronecker layers (``density_suffix``): values
    against Aer, weight gradients against finite differences of the engine itself."""
    prog = {
        "dressed-d4": lambda: program("dressed", depth=4),
        "strongly_entangling-d3": lambda: program("strongly_entangling", depth=3),
        "mixed": _deep_mixed_program,
    }[case]()
    engine = DensityEngine(prog, torch.float64, backend="fake_lagos")
    plan, stacked, runs = engine._suffix_plan
    kinds = [kind for kind, _ in plan]
    assert kinds.count("layer") >= 2 and len(runs) >= 4
    x, w = rows(prog, n=2, seed=5)
    np.testing.assert_allclose(engine.execute(x, w).numpy(), aer_reference(engine, x, w), atol=1e-6)
    w.requires_grad_(True)
    engine.execute(x, w).sum().backward()
    with torch.no_grad():
        for i in range(0, len(prog.weights), 3):
            plus, minus = w.clone(), w.clone()
            plus[i] += 1e-6
            minus[i] -= 1e-6
            fd = (engine.execute(x, plus).sum() - engine.execute(x, minus).sum()) / 2e-6
            assert float(w.grad[i]) == pytest.approx(float(fd), abs=1e-6)


def _plain_walk(rows, runs, index, walk):
    """The weight-layer walk as autograd records it: the reference for ``LayerWalk``."""
    per_layer = torch.cat([torch.eye(4, dtype=runs.dtype)[None], runs])[index]
    k = index.shape[1]
    his, los = kron_factors(per_layer[:, k // 2 :]), kron_factors(per_layer[:, : k // 2])
    r = rows
    for step in walk:
        if isinstance(step, int):
            r = (his[step].T @ r.view(len(r), his.shape[-1], los.shape[-1]) @ los[step]).reshape(r.shape)
        else:
            r = r @ step
    return r


@pytest.mark.parametrize("seed", range(4))
def test_embedded_block_is_qiskits_ptm_of_the_same_gates(seed):
    """``density_blocks.embed`` (a block's gates as one matrix on a window of qubits, applied
    row by row to the running transpose) against ``qiskit.quantum_info.PTM`` of the circuit."""
    from qiskit import QuantumCircuit
    from qiskit.circuit.library import CXGate, ECRGate, RYGate, SXGate
    from qiskit.quantum_info import PTM

    rng, n, first = np.random.default_rng(seed), 3, 2  # the window: qubits 2..4 of a larger layer
    qc, gates = QuantumCircuit(n), []
    for kind in rng.integers(4, size=8):
        gate = (RYGate(rng.uniform(-3, 3)), SXGate(), CXGate(), ECRGate())[kind]
        qubits = [int(q) for q in rng.choice(n, gate.num_qubits, replace=False)]
        qc.append(gate, qubits)
        gates.append((tuple(first + q for q in qubits), torch.tensor(PTM(gate).data.real)))
    torch.testing.assert_close(embed(gates, first, n), torch.tensor(PTM(qc).data.real), atol=1e-12, rtol=0)


@pytest.mark.parametrize("k, identities", [(3, 2), (4, 0), (4, 3)])
def test_layer_walk_equals_the_plain_walk_and_passes_gradcheck(k, identities):
    """``density_walk.LayerWalk`` (hand-written backward; runs as a view when every qubit of
    every layer has one, else gathered with identities) against autograd of the plain walk."""
    gen, n = torch.Generator().manual_seed(k + identities), 3
    flat = torch.arange(n * k)
    flat[torch.randperm(n * k, generator=gen)[:identities]] = -1
    index = torch.zeros(n * k, dtype=torch.long)
    index[flat >= 0] = torch.arange(1, int((flat >= 0).sum()) + 1)
    slots = None if identities == 0 else torch.nonzero(index).flatten()
    index = index.view(n, k)
    runs = torch.randn(int(index.max()), 4, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    consts = [torch.randn(4**k, 4**k, dtype=torch.float64, generator=gen) / 2**k for _ in range(2)]
    walk, rows_ = [consts[0], 2, 1, consts[1], 0], torch.randn(3, 4**k, dtype=torch.float64, generator=gen)
    torch.testing.assert_close(LayerWalk.apply(rows_, runs, index, slots, walk), _plain_walk(rows_, runs, index, walk))
    # fast_mode: the Jacobian along random directions (one backward) rather than column by
    # column; a wrong entry still fails it. The full check took 1.9 s a case at k = 4.
    assert torch.autograd.gradcheck(lambda r: LayerWalk.apply(rows_, r, index, slots, walk), (runs,), fast_mode=True)


@pytest.mark.parametrize("name, angles", [("dressed", 1), ("strongly_entangling", 3)])
def test_runs_in_closed_form_equal_their_ptm_chains_and_pass_gradcheck(name, angles):
    """Weight runs as products of ``(1, cos, sin)`` factors (``density_walk.ClosedFormRuns``)
    against the chain of their gates' and channels' PTMs; the first weight layer is absorbed
    into the prefix, which is then constant."""
    prog = program(name, depth=3)
    engine = DensityEngine(prog, torch.float64, backend="fake_lagos")
    assert engine._suffix_closed and engine._prefix_parts == "const" and engine._suffix_absorbed == 4
    assert engine._suffix_angles.shape[1] == angles
    x, w = rows(prog, n=1)
    ptms = engine._group_ptms(engine.angles.matrices(x, w, engine._builders()))
    theta = engine.angles.angles("w", x, w)[engine._suffix_angles]
    flat = torch.arange(theta.numel()).view(theta.shape)

    def closed(t):
        return ClosedFormRuns.apply(t.flatten(), flat, None, None, engine._suffix_basis)

    chained = torch.stack([engine._run_ptm(items, ptms)[0] for items in engine._suffix_plan[2]])
    torch.testing.assert_close(closed(theta), chained, atol=1e-12, rtol=0)
    assert torch.autograd.gradcheck(closed, (theta.detach().requires_grad_(),))
    # and from the weights through the table's affine map, as the engine calls it
    maps = (engine._suffix_w_index, engine._suffix_w_scale, engine._suffix_w_offset, engine._suffix_basis)
    torch.testing.assert_close(ClosedFormRuns.apply(w, *maps), chained, atol=1e-12, rtol=0)
    assert torch.autograd.gradcheck(lambda v: ClosedFormRuns.apply(v, *maps), (w.clone().requires_grad_(),))


def _scaled_weights_program():
    """Weight angles ``2 w - 0.3``: the runs' angles need the scale of the weight table's map."""
    from qiskit.circuit import ParameterVector, QuantumCircuit

    x, w = ParameterVector("x", 3), ParameterVector("w", 9)
    qc = QuantumCircuit(3)
    for layer in range(3):
        for k in range(3):
            qc.ry(x[k] if layer == 0 else 2 * w[3 * layer + k] - 0.3, k)
        qc.cx(0, 1)
        qc.cx(1, 2)
    for k in range(3):
        qc.ry(2 * w[k] - 0.3, k)
    return LayerProgram(qc, tuple(x), tuple(w), tuple(SparsePauliOp(p) for p in ("ZII", "IZI", "IIZ")))


@pytest.mark.parametrize("name", ["dressed", "strongly_entangling", "scaled"])
def test_weight_layers_node_passes_gradcheck_from_the_weights(name):
    """Angles, runs in closed form, the absorbed layer and the walk as one node
    (``density_walk.WeightLayers``): gradcheck of the rows and the absorbed runs in the weights."""
    prog = _scaled_weights_program() if name == "scaled" else program(name, depth=3)
    engine = DensityEngine(prog, torch.float64, backend="fake_lagos")
    assert engine._suffix_direct and any(kind == "layer" for kind, _ in engine._suffix_plan[0])
    assert (engine._suffix_w_scale is not None) == (name == "scaled")
    x, w = rows(prog, n=1)

    def rows_and_absorbed(weights):
        ptms = engine._group_ptms(engine.angles.matrices(x, weights, engine._builders(rows=True)))
        r, absorbed = readout_rows(engine, ptms, x, weights)
        return r if absorbed is None else (r, absorbed)

    # fast_mode (random directions, see the layer-walk test): the full check took 2.8-3.4 s a case.
    assert torch.autograd.gradcheck(rows_and_absorbed, (w.clone().requires_grad_(),), fast_mode=True)


def _two_input_embedding():
    """Two input-dependent rotations per qubit (RY(x) then RZ(2x)): not one RZ in closed form."""
    from qiskit.circuit import ParameterVector, QuantumCircuit

    x, w = ParameterVector("x", 2), ParameterVector("w", 2)
    qc = QuantumCircuit(2)
    for k in range(2):
        qc.ry(x[k], k)
        qc.rz(2 * x[k] + 0.1, k)
    qc.cx(0, 1)
    qc.ry(w[0], 0)
    qc.rx(w[1], 1)
    return LayerProgram(qc, tuple(x), tuple(w), tuple(SparsePauliOp(p) for p in ("ZI", "XZ")))


@pytest.mark.parametrize("case, closed_form", [("dressed", True), ("strongly_entangling", True), ("two-inputs", False)])
def test_embedding_rz_in_closed_form_equals_aer(case, closed_form):
    """Every built-in embedding transpiles to one input RZ per qubit, taken in closed form
    (``density_prefix``); an embedding with two input rotations per qubit keeps the PTM chain."""
    prog = _two_input_embedding() if case == "two-inputs" else program(case, depth=2)
    engine = DensityEngine(prog, torch.float64, backend="fake_lagos")
    assert (engine._rotation is not None) == closed_form
    x, w = rows(prog, n=3, seed=2)
    np.testing.assert_allclose(engine.execute(x, w).numpy(), aer_reference(engine, x, w), atol=1e-6)


# ---------------------------------------------------------------------- scales, gradients, shots
@pytest.mark.parametrize("name", ["dressed", "strongly_entangling"])
def test_scale_zero_equals_the_statevector_engine(name):
    prog = program(name)
    x, w = rows(prog, n=5)
    engine = DensityEngine(prog, torch.float64, backend="fake_lagos", scale=0.0)
    np.testing.assert_allclose(
        engine.execute(x, w).numpy(), StatevectorEngine(prog, torch.float64).execute(x, w).numpy(), atol=1e-12
    )


def test_fidelity_falls_monotonically_as_the_noise_grows():
    prog = program()
    x, w = rows(prog, n=4)
    exact = StatevectorEngine(prog, torch.float64).execute(x, w).numpy()
    errors = [
        float(
            np.abs(
                DensityEngine(prog, torch.float64, backend="fake_lagos", scale=s).execute(x, w).numpy() - exact
            ).mean()
        )
        for s in (0.0, 0.5, 1.0, 2.0, 4.0)
    ]
    assert errors[0] < 1e-12 and all(a < b for a, b in zip(errors, errors[1:])), errors
    readout_only = DensityEngine(prog, torch.float64, backend="fake_lagos", scale=0.0, readout_scale=1.0)
    gates_only = DensityEngine(prog, torch.float64, backend="fake_lagos", scale=0.0, gate_scale=1.0)
    assert (
        0
        < np.abs(gates_only.execute(x, w).numpy() - exact).mean()
        < np.abs(readout_only.execute(x, w).numpy() - exact).mean()
    )


def test_gradients_equal_finite_differences():
    prog = program("strongly_entangling")
    engine = DensityEngine(prog, torch.float64, backend="fake_quito")
    x, w = rows(prog, n=2)
    x.requires_grad_(True)
    w.requires_grad_(True)
    out = engine.execute(x, w)
    loss_weights = torch.linspace(-1, 1, out.numel(), dtype=torch.float64).reshape(out.shape)
    (out * loss_weights).sum().backward()
    step = 1e-6
    with torch.no_grad():
        for tensor, grad in ((x, x.grad), (w, w.grad)):
            flat = tensor.view(-1)
            for i in range(flat.numel()):
                old = float(flat[i])
                flat[i] = old + step
                plus = (engine.execute(x, w) * loss_weights).sum()
                flat[i] = old - step
                minus = (engine.execute(x, w) * loss_weights).sum()
                flat[i] = old
                assert float(grad.view(-1)[i]) == pytest.approx(float(plus - minus) / (2 * step), abs=1e-5)


def test_shots_sample_the_exact_noisy_distribution():
    prog = program()
    x, w = rows(prog, n=6)
    exact = DensityEngine(prog, torch.float64, backend="fake_lagos").execute(x, w)
    shots = DensityEngine(prog, torch.float64, backend="fake_lagos", shots=4000, seed=7)
    one, two = shots.execute(x, w), shots.execute(x, w)
    assert not torch.equal(one, two)  # fresh shots each call
    again = DensityEngine(prog, torch.float64, backend="fake_lagos", shots=4000, seed=7).execute(x, w)
    assert torch.equal(one, again)  # seeded
    assert torch.allclose((one * 4000).round(), one * 4000)  # counts / shots
    sigma = (1 - exact**2).sqrt() / np.sqrt(4000)
    assert float(((one - exact).abs() / sigma).max()) < 5
    many = torch.stack([shots.execute(x, w) for _ in range(25)]).mean(0)
    assert float((many - exact).abs().max()) < 5 * float(sigma.max()) / np.sqrt(25)  # mean of 25 draws


def test_shots_keep_gradients_of_the_exact_values():
    prog = program()
    x, w = rows(prog, n=3)
    w.requires_grad_(True)
    DensityEngine(prog, torch.float64, backend="fake_lagos", shots=64, seed=1).execute(x, w).sum().backward()
    shot_grad = w.grad.clone()
    w.grad = None
    DensityEngine(prog, torch.float64, backend="fake_lagos").execute(x, w).sum().backward()
    torch.testing.assert_close(shot_grad, w.grad)


def test_float32_agrees_with_float64():
    prog = program()
    x, w = rows(prog)
    double = DensityEngine(prog, torch.float64, backend="fake_lagos").execute(x, w)
    single = DensityEngine(prog, torch.float32, backend="fake_lagos").execute(x.float(), w.float())
    assert single.dtype == torch.float32
    np.testing.assert_allclose(single.numpy(), double.numpy(), atol=1e-5)


def test_records_what_runs_where():
    engine = DensityEngine(program(), backend="snapshot:ibm_lagos", layout="4,5,3,1", gate_scale=2.0)
    assert engine.physical_qubits == [4, 5, 3, 1] and engine.active_qubits == [1, 3, 4, 5]
    assert "calibration snapshot" in engine.backend_source and engine.calibration_date
    assert engine.scales == NoiseScales(gate=2.0, readout=1.0, relaxation=1.0)
    assert engine.noise.readout[5] != (engine.noise.readout[5][0],) * 2  # a snapshot keeps both directions


@pytest.mark.parametrize(
    "options, message",
    [
        ({}, "option backend is required"),
        ({"backend": "fake_lagos", "scale": -1}, "scale must be a number >= 0"),
        ({"backend": "fake_lagos", "readout_scale": "x"}, "readout scale must be a number"),
        ({"backend": "fake_lagos", "shots": 0}, "shots must be an integer >= 1"),
        ({"backend": "fake_lagos", "layout": "0,1"}, "--layout has 2 qubits"),
        ({"backend": "fake_armonk"}, "has 1"),
        ({"backend": "fake_nowhere"}, "unknown fake backend"),
    ],
)
def test_bad_options_are_one_line_errors(options, message):
    with pytest.raises(QkitError, match=message):
        DensityEngine(program(), **options)


def test_more_than_ten_active_qubits_is_refused():
    with pytest.raises(QkitError, match="at most 10"):
        DensityEngine(program("dressed", 12), backend="fake_sherbrooke", layout="default")


def test_shots_of_mixed_pauli_observables_average_to_the_exact_values():
    prog = _small_random_programs(count=2)[1][1]  # X, Y and Z terms with coefficients
    x, w = rows(prog, n=4, seed=5)
    exact = DensityEngine(prog, torch.float64, backend="fake_lagos", layout="default").execute(x, w)
    shots = DensityEngine(prog, torch.float64, backend="fake_lagos", layout="default", shots=2000, seed=3)
    mean = torch.stack([shots.execute(x, w) for _ in range(30)]).mean(0)
    scale = sum(float(abs(c)) for op in prog.observables for c in op.coeffs)  # |each term| <= |coeff|
    assert float((mean - exact).abs().max()) < 5 * scale / np.sqrt(2000 * 30)
