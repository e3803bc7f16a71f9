"""Backend names resolve in one place: fake backends of every generation, and the real-device
path that, without an account, says in one line how to emulate instead."""

import os
import subprocess
import sys

import pytest

from qkit.errors import QkitError
from qkit.hardware import fake_backend_names, resolve_backend


@pytest.mark.parametrize(
    "name, qubits, two_qubit_gate",
    [
        ("fake_lagos", 7, "cx"),
        ("fake_quito", 5, "cx"),
        ("fake_brisbane", 127, "ecr"),
        ("fake_torino", 133, "cz"),
    ],
)
def test_fake_backends_of_every_generation(name, qubits, two_qubit_gate):
    resolved = resolve_backend(name)
    assert resolved.kind == "fake" and not resolved.is_hardware
    assert resolved.backend.num_qubits == qubits and two_qubit_gate in resolved.backend.operation_names
    assert resolved.backend.name == name and "emulation" in resolved.source


def test_fake_backend_names_cover_the_provider_without_instantiating():
    names = fake_backend_names()
    assert {"fake_lagos", "fake_quito", "fake_torino", "fake_fez"} <= set(names) and len(names) > 50
    assert all(n.startswith("fake_") and n == n.lower() for n in names)


@pytest.mark.parametrize(
    "name, message",
    [
        ("fake_lagoss", "unknown fake backend 'fake_lagoss'; did you mean fake_lagos"),
        ("", "a backend name is needed"),
        ("snapshot:no_such_device", "no_such_device"),
    ],
)
def test_bad_names_are_one_line_errors(name, message, tmp_path):
    with pytest.raises(QkitError, match=message) as err:
        resolve_backend(name, snapshot_dir=tmp_path)
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_real_device_without_an_account_names_the_ways_out(tmp_path):
    """No saved account, no token in the environment: one line, and never a silent emulation."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QISKIT_IBM")}
    env["HOME"] = str(tmp_path)
    code = (
        "from qkit.hardware import resolve_backend\n"
        "try:\n    resolve_backend('ibm_lagos')\n"
        "except Exception as exc:\n    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120).stdout
    assert out.startswith("QkitError") and len(out.strip().splitlines()) == 1
    assert "--backend fake_lagos" in out and "--backend snapshot:ibm_lagos" in out and "save_account" in out
