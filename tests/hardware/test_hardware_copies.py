"""Parallel copies of the layer's circuit: choosing them, dealing rows, reading bits, end to end.

``choose_copies`` is checked on FakeTorino (133 qubits) against the coupling map itself (no
coupler between two copies, each copy the layer's chain on couplers, excluded qubits unused,
``auto``'s outlier cut), row dealing and copy outcomes against hand-computed arrays, and a
3-copy readout-mitigated run end to end on the runtime's local mode (fake backends, no mocks).
"""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from qkit.cli import app
from qkit.errors import QkitError
from qkit.hardware.copies import AUTO_OUTLIER, apart, choose_copies, parse_copies, parse_qubits
from qkit.hardware.measure import copy_outcomes, outcomes_of
from qkit.hardware.prepare import wide_rows

FIRST = [99, 92, 80, 81]
runner = CliRunner()


@pytest.fixture(scope="module")
def program():
    from qkit.circuits import build_circuit
    from qkit.engines.base import LayerProgram

    spec = build_circuit("dressed", 4, 1)  # the quantum_run fixture's head
    return LayerProgram(spec.circuit, tuple(spec.inputs), tuple(spec.weights), tuple(spec.observables))


@pytest.fixture(scope="module")
def torino():
    from qkit.hardware.backends import resolve_backend

    return resolve_backend("fake_torino")


@pytest.fixture(scope="module")
def auto(program, torino):
    return choose_copies(program, torino.backend, torino.calibration(), FIRST, "auto")


@pytest.fixture(scope="module")
def every(program, torino, auto):
    """Every copy that fits, in the order they are taken (``--copies <fit>``)."""
    return choose_copies(program, torino.backend, torino.calibration(), FIRST, auto.fit)


def _edges(resolved):
    return {tuple(e) for e in resolved.backend.coupling_map.get_edges()}


def _check_apart(layouts, resolved):
    edges = _edges(resolved)
    used = [q for layout in layouts for q in layout]
    assert len(used) == len(set(used)), "copies share a qubit"
    for i, a in enumerate(layouts):
        assert all((a[j], a[j + 1]) in edges for j in range(len(a) - 1)), f"copy {a} is not the layer's chain"
        for b in layouts[i + 1 :]:
            assert not any((p, q) in edges for p in a for q in b), f"a coupler joins {a} and {b}"


def test_copies_on_torino_are_disjoint_with_no_coupler_between_them(program, auto, every, torino):
    assert auto.layouts[0] == FIRST and every.layouts[0] == FIRST
    assert every.fit == auto.fit == every.n >= 3 and 1 <= auto.n <= auto.fit
    assert len(auto.estimates) == auto.n and all(e > 0 for e in every.estimates)
    _check_apart(every.layouts, torino)
    # apart() took as many as the coupling map allows: every other chain of 4 touches a copy or its neighbours
    from qkit.hardware.layout import vf2_layouts

    near = {q for layout in every.layouts for q in layout}
    near |= {b for a, b in _edges(torino) if a in near}
    assert all(not near.isdisjoint(c) for c in vf2_layouts(program.circuit, torino.backend, limit=20_000))
    # auto keeps every copy but those whose estimate is above AUTO_OUTLIER x the copies' median
    cut = AUTO_OUTLIER * float(np.median(every.estimates))
    kept = [layout for layout, e in zip(every.layouts, every.estimates) if e <= cut or layout == FIRST]
    assert auto.layouts == kept and "auto" in auto.reason and f"of the {auto.fit}" in auto.reason
    assert auto.to_dict()["n"] == auto.n and "r % n" in auto.to_dict()["rows"]


def test_a_number_of_copies_takes_the_first_that_fit(program, torino, every):
    three = choose_copies(program, torino.backend, torino.calibration(), FIRST, 3)
    assert three.n == 3 and three.layouts == every.layouts[:3] and three.fit == every.fit
    assert three.reason == f"--copies 3 of the {every.fit} that fit apart on fake_torino"
    # no more copies than rows to evaluate
    assert choose_copies(program, torino.backend, torino.calibration(), FIRST, 3, shots_rows=2).n == 2


def test_excluded_qubits_are_never_used(program, torino, every):
    exclude = every.layouts[1] + every.layouts[2][:1]
    choice = choose_copies(program, torino.backend, torino.calibration(), FIRST, "auto", exclude=exclude)
    assert choice.layouts[0] == FIRST
    assert all(set(exclude).isdisjoint(layout) for layout in choice.layouts)
    _check_apart(choice.layouts, torino)
    assert choice.fit >= 2 and every.layouts[1] not in choice.layouts


def test_more_copies_than_fit_is_an_error_naming_how_many_fit(program, torino, every):
    with pytest.raises(QkitError, match=f"at most {every.fit} copies of the 4-qubit circuit fit apart"):
        choose_copies(program, torino.backend, torino.calibration(), FIRST, every.fit + 1)


def test_lagos_fits_one_copy_and_says_why(program):
    from qkit.hardware.backends import resolve_backend
    from qkit.hardware.layout import choose_layout

    lagos = resolve_backend("fake_lagos")
    first = choose_layout(program, None, lagos.backend, snapshot=lagos.calibration()).physical_qubits
    choice = choose_copies(program, lagos.backend, lagos.calibration(), first, "auto")
    assert choice.n == choice.fit == 1 and choice.layouts == [first] and len(choice.estimates) == 1
    assert "holds one copy" in choice.reason and "fake_lagos" in choice.reason
    with pytest.raises(QkitError, match="--copies 2 does not fit on fake_lagos: it holds one copy"):
        choose_copies(program, lagos.backend, lagos.calibration(), first, 2)


def test_apart_skips_candidates_that_touch_a_taken_copy_or_an_excluded_qubit(torino):
    edges = _edges(torino)
    neighbour = next(b for a, b in edges if a == FIRST[0] and b not in FIRST)
    far = [0, 1, 2, 3]
    got = apart(
        FIRST,
        [[neighbour, 120, 121, 122], list(FIRST), far, [4, 5, 6, 7], [20, 21, 22, 23]],
        torino.backend,
        exclude={21},
    )
    assert got[0] == FIRST and [neighbour, 120, 121, 122] not in got and [20, 21, 22, 23] not in got
    assert far in got and [4, 5, 6, 7] not in got  # 3-4 is a coupler: next to the copy on 0-3
    assert (3, 4) in edges


@pytest.mark.parametrize("value, parsed", [("auto", "auto"), (" AUTO ", "auto"), ("3", 3), (1, 1)])
def test_parse_copies(value, parsed):
    assert parse_copies(value) == parsed


@pytest.mark.parametrize("value", ["0", -2, "two", "1.5"])
def test_parse_copies_refuses(value):
    with pytest.raises(QkitError, match="--copies must be auto or an integer >= 1"):
        parse_copies(value)


def test_parse_qubits():
    assert parse_qubits("40, 3,17,3") == [3, 17, 40] and parse_qubits(None) == [] and parse_qubits([5, 2]) == [2, 5]
    with pytest.raises(QkitError, match="physical qubits"):
        parse_qubits("3,x")
    with pytest.raises(QkitError, match=">= 0"):
        parse_qubits("-1")


def test_wide_rows_deal_row_r_to_copy_r_mod_n():
    one = np.array([[10, 11], [20, 21], [30, 31]])  # 3 samples, 2 columns
    wide = wide_rows(one, repeat=2, copies=4)  # 6 rows -> 2 wide rows, padded with row 0
    assert wide.tolist() == [[10, 11, 20, 21, 30, 31, 10, 11], [20, 21, 30, 31, 10, 11, 10, 11]]
    rows = np.tile(one, (2, 1))
    for r in range(len(rows)):  # row r: copy r % 4 of wide row r // 4
        k, m = r % 4, r // 4
        assert wide[m, 2 * k : 2 * k + 2].tolist() == rows[r].tolist()
    assert np.array_equal(wide_rows(one, 2, 1), rows)


def test_copy_outcomes_of_a_hand_packed_array():
    # 2 copies of 5 bits = 10 clbits, big-endian packed in 2 bytes: value = copy1 << 5 | copy0
    def packed(copy0, copy1):
        v = copy1 << 5 | copy0
        return [v >> 8, v & 0xFF]

    shots = [
        [(22, 13), (0, 31), (1, 16)],  # wide row 0: three shots (copy 0, copy 1)
        [(31, 0), (5, 5), (16, 1)],
    ]  # wide row 1
    array = np.array([[packed(*s) for s in row] for row in shots], dtype=np.uint8)
    assert array[0, 0].tolist() == [0x01, 0xB6]  # 13 << 5 | 22 = 438 = 0x1B6
    got = copy_outcomes(array, 5, 2)
    assert got.tolist() == [[22, 0, 1], [13, 31, 16], [31, 5, 16], [0, 5, 1]]  # row m * 2 + k
    # the same as Qiskit's own BitArray slicing of copy k's clbits
    from qiskit.primitives import BitArray

    bits = BitArray(array, num_bits=10)
    for k in range(2):
        own = outcomes_of(bits.slice_bits(list(range(5 * k, 5 * k + 5))))
        assert np.array_equal(got[k::2], own)
    # one byte, three copies of 2 bits: clbits 0-1, 2-3, 4-5
    assert copy_outcomes(np.array([[[0b00100111]]], dtype=np.uint8), 2, 3).tolist() == [[3], [1], [2]]


# ----------------------------------------------------------------------------- end to end


def _jobs(prep):
    return json.loads((prep.out_dir / "jobs.json").read_text())


@pytest.mark.slow
def test_three_copies_end_to_end_and_a_rerun_submits_nothing(run_copy, torino):
    from qkit.hardware.prepare import prepare_hardware_run
    from qkit.hardware.results import execute_hardware_run

    options = dict(repeat=2, mitigation="readout", seed=0, copies=3)
    prep = prepare_hardware_run(run_copy, "fake_torino", **options)
    samples = prep.plan.samples
    assert prep.n_copies == 3 and prep.primitive.copies == 3
    assert prep.plan.rows == -(-samples * 2 // 3) == len(prep.values) and prep.plan.copies == 3
    assert prep.values.shape[1] == 3 * prep.sample_rows.shape[1]
    assert "3copies-" in prep.key and prep.copies.layouts[0] == prep.physical_qubits
    _check_apart(prep.copies.layouts, torino)
    assert sorted(prep.primitive.read_qubits) == sorted(q for c in prep.copies.layouts for q in c)

    record = execute_hardware_run(prep)
    assert record["submitted_now"] == 2  # the readout calibration and one job
    assert record["copies"]["n"] == 3 and record["copies"]["layouts"] == prep.copies.layouts
    per_copy = record["per_copy"]
    assert [c["copy"] for c in per_copy] == [0, 1, 2]
    assert [c["layout"] for c in per_copy] == prep.copies.layouts
    assert sum(c["rows"] for c in per_copy) == samples * 2
    assert [c["rows"] for c in per_copy] == [len(range(k, samples * 2, 3)) for k in range(3)]
    assert all(0 <= c["delta"] < 0.2 and 0.8 <= c["agreement"] <= 1 for c in per_copy)
    assert len(record["per_copy_raw"]) == 3
    # mthree corrected the readout of every copy's qubits, measured by the calibration job
    assert sorted(map(int, record["readout"])) == sorted(prep.primitive.read_qubits)
    assert record["metrics"]["delta"]["mean"] < record["unmitigated"]["metrics"]["delta"]["mean"]
    for key in ("auc", "accuracy", "delta", "agreement"):
        assert record["metrics"][key]["mean"] is not None
    assert len(record["repetitions"]) == 2
    saved = json.loads((prep.out_dir / "hardware.json").read_text())
    assert saved["per_copy"] == per_copy and saved["plan"]["copies"] == 3
    assert _jobs(prep)["plan"]["copies"] == prep.copies.layouts

    again = prepare_hardware_run(run_copy, "fake_torino", **options)
    assert again.out_dir == prep.out_dir and again.copies.layouts == prep.copies.layouts
    rerun = execute_hardware_run(again)
    assert rerun["submitted_now"] == 0
    assert rerun["metrics"] == record["metrics"] and rerun["per_copy"] == per_copy
    assert rerun["job_ids"] == record["job_ids"]


@pytest.mark.slow
def test_one_copy_keeps_the_single_copy_folder_name(run_copy):
    from qkit.hardware.prepare import prepare_hardware_run

    prep = prepare_hardware_run(run_copy, "fake_torino", repeat=2, mitigation="readout", seed=0, copies=1)
    assert prep.n_copies == 1 and prep.plan.copies == 1 and prep.plan.rows == prep.plan.samples * 2
    assert "copies" not in prep.key
    assert prep.key == (f"test-1024shots-x2-readout-q{'.'.join(map(str, prep.physical_qubits))}-seed0")


# ----------------------------------------------------------------------------- CLI


def _error(args):
    result = runner.invoke(app, ["run-hardware", *args])
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.output  # the plan may come first
    return errors[0]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--copies", "0"], "--copies must be auto or an integer >= 1, got '0'"),
        (["--copies", "many"], "--copies must be auto or an integer >= 1"),
        (["--copies", "2", "--mitigation", "trex"], "--copies 2 needs the sampler path"),
        (["--rep-delay", "-5"], "--rep-delay must be a number of microseconds >= 0"),
        (["--budget", "0"], "--budget must be a number of QPU seconds > 0"),
    ],
)
def test_bad_copy_options_are_one_line_before_the_run_is_read(tmp_path, args, message):
    assert message in _error([str(tmp_path / "never-read"), "--backend", "fake_torino", *args])


@pytest.mark.slow
def test_copy_option_errors_on_a_real_run_are_one_line(run_copy, every):
    fit = every.fit
    assert f"at most {fit} copies" in _error([str(run_copy), "--backend", "fake_torino", "--copies", "40"])
    assert "--copies 2 does not fit on fake_lagos: it holds one copy" in _error(
        [str(run_copy), "--backend", "fake_lagos", "--copies", "2"]
    )
    assert "uses excluded qubit(s) [99]" in _error(
        [str(run_copy), "--backend", "fake_torino", "--layout", "99,92,80,81", "--exclude-qubits", "99,5"]
    )
    message = _error([str(run_copy), "--backend", "fake_torino", "--rep-delay", "900"])
    assert "--rep-delay 900 us is outside fake_torino's range [0, 500] us" in message
    assert "lacks" in _error([str(run_copy), "--backend", "fake_torino", "--exclude-qubits", "500"])
    assert "physical qubits" in _error([str(run_copy), "--backend", "fake_torino", "--exclude-qubits", "3,x"])
    assert not (run_copy / "hardware").exists()


@pytest.mark.slow
def test_a_budget_below_the_cheapest_plan_names_its_cost(run_copy):
    from qkit.hardware.prepare import prepare_hardware_run
    from qkit.hardware.pricing import plan_table

    message = _error([str(run_copy), "--backend", "fake_lagos", "--budget", "0.5"])
    cheapest = min(plan_table(prepare_hardware_run(run_copy, "fake_lagos")), key=lambda p: p.qpu_seconds)
    assert cheapest.qpu_seconds > 0.5
    assert "--budget 0.5 is below the cheapest plan" in message
    assert f"estimate {cheapest.qpu_seconds:.1f} QPU s" in message and cheapest.label() in message
    assert not (run_copy / "hardware").exists()


@pytest.mark.slow
def test_dry_run_prices_copies_and_submits_nothing(run_copy, every):
    result = runner.invoke(
        app,
        [
            "run-hardware",
            str(run_copy),
            "--backend",
            "fake_torino",
            "--repeat",
            "2",
            "--mitigation",
            "readout",
            "--dry-run",
        ],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "copies:" in out and "no coupler joins two copies" in out and "row r runs on copy r %" in out
    assert "plans (estimated QPU seconds" in out and "copies" in out.split("plans (")[1]
    table = out.split("plans (")[1].splitlines()
    assert any(line.startswith("*") for line in table)  # the command's own plan is marked
    assert "dry run: nothing submitted" in out
    assert not list(run_copy.glob("hardware/**/jobs.json")) and not (run_copy / "hardware").exists()


@pytest.mark.slow
def test_replan_reuses_the_forward_pass_and_equals_a_fresh_prepare(run_copy):
    """--budget's re-plan: other copies, shots, mitigation and rep delay without reading the data again;
    the same rows, qubits and plan as preparing those options from scratch."""
    from qkit.hardware.prepare import prepare_hardware_run, replan

    prep = prepare_hardware_run(run_copy, "fake_torino", repeat=2, mitigation="readout", seed=0, copies=3)
    other = replan(prep, copies=2, shots=256, mitigation="none", rep_delay=100)
    fresh = prepare_hardware_run(
        run_copy, "fake_torino", repeat=2, shots=256, mitigation="none", seed=0, copies=2, rep_delay=100
    )
    assert other.copies.layouts == fresh.copies.layouts == prep.copies.layouts[:2]
    assert other.plan.to_dict() == fresh.plan.to_dict() and other.key == fresh.key
    np.testing.assert_array_equal(other.values, fresh.values)
    assert other.rep_delay == pytest.approx(100e-6) and other.plan.calibration_shots == 0
    assert other.sample_rows is prep.sample_rows  # the forward pass was not run again
    one = replan(prep, copies=1, shots=1024, mitigation="readout")
    assert one.n_copies == 1 and one.plan.rows == prep.plan.samples * 2 and "copies" not in one.key
    with pytest.raises(QkitError, match="1 to 3 copies"):
        replan(prep, copies=4, shots=1024, mitigation="readout")
