"""What the stand-in device does with a job: decode the executor program with the runtime's own
converters, run it on Aer with the fake backend's noise (``qkit.hardware.wide``: each independent
part of a wide circuit on its own qubits), answer in the runtime's result schema, and bill it.
Also the backend's calibration files, served as IBM's API serves them."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def utc_dates(data: Any) -> Any:
    """IBM's API gives calibration dates in UTC (the client converts them to local time); the fake
    backends' files hold them in the local time of whoever saved them (-03:00, -05:00)."""
    if isinstance(data, dict):
        return {
            k: (
                dt.datetime.fromisoformat(v).astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
                if k in ("date", "last_update_date") and isinstance(v, str)
                else utc_dates(v)
            )
            for k, v in data.items()
        }
    return [utc_dates(v) for v in data] if isinstance(data, list) else data


def digest(params: dict) -> str:
    """What the job asks for (circuits as OpenQASM 3, arguments, shots), not how it was encoded:
    QPY carries each Parameter's random UUID, so one job sent by two processes differs in bytes."""
    from ibm_quantum_schemas.executor.version_2_0 import ParamsModel
    from qiskit import qasm3
    from qiskit_ibm_runtime.quantum_program.converters.converters_2_0 import quantum_program_from_2_0

    program, _ = quantum_program_from_2_0(ParamsModel.model_validate(params))
    digest = hashlib.sha256(str(program.shots).encode())
    for item in program.items:
        digest.update(qasm3.dumps(item.circuit).encode())
        digest.update(np.ascontiguousarray(getattr(item, "circuit_arguments", None)).tobytes())
    return digest.hexdigest()


@functools.lru_cache(maxsize=None)
def emulation(fake: str) -> tuple[Any, Any]:
    """The fake backend and its Aer noise per group of qubits (built once per process)."""
    from qkit.hardware.backends import resolve_backend
    from qkit.hardware.wide import noise_for

    resolved = resolve_backend(fake)
    return resolved, noise_for(resolved)


def execute(params: dict, fake: str, seed: int, seconds_per_shot: float) -> tuple[str, float]:
    """Run the executor program on Aer with ``fake``'s noise: (the result as JSON, billed seconds
    = executions x (rep delay + ``seconds_per_shot``) + 2 s)."""
    from ibm_quantum_schemas.common import CompressedTensorModel
    from ibm_quantum_schemas.executor.version_2_0 import ParamsModel, QuantumProgramResultModel
    from qiskit_ibm_runtime.quantum_program.converters.converters_2_0 import (
        passthrough_data_to_2_0,
        quantum_program_from_2_0,
    )
    from qiskit_ibm_runtime.quantum_program.quantum_program import CircuitItem

    from qkit.hardware.wide import sample

    program, options = quantum_program_from_2_0(ParamsModel.model_validate(params))
    resolved, noise_of = emulation(fake)
    pubs = []
    for item in program.items:
        if not isinstance(item, CircuitItem):
            raise ValueError("this local service runs circuit items only")
        args = item.circuit_arguments
        pubs.append((item.circuit, args if args is not None and args.size else None, program.shots))
    started = now()
    result = sample(
        resolved.backend, pubs, {"default_shots": program.shots, "simulator": {"seed_simulator": seed}}, noise_of
    ).result()
    data = [
        {
            "results": {
                name: CompressedTensorModel.from_numpy(bits.to_bool_array(order="little"))
                for name, bits in pub.data.items()
            },
            "metadata": {},
        }
        for pub in result
    ]
    model = QuantumProgramResultModel(
        data=data,
        metadata={"chunk_timing": [{"start": started, "stop": now(), "parts": []}]},
        passthrough_data=passthrough_data_to_2_0(program.passthrough_data),
        semantic_role=program._semantic_role,
    )
    rep_delay = options.execution.rep_delay or 250e-6
    executions = sum(int(np.prod(np.shape(p[1])[:-1])) if p[1] is not None else 1 for p in pubs) * program.shots
    return model.model_dump_json(), round(executions * (rep_delay + seconds_per_shot) + 2.0, 3)


def backend_json(name: str, fake: str, what: str) -> dict:
    """``configuration`` or ``properties`` of ``fake`` as IBM's API gives them for ``name``."""
    import qiskit_ibm_runtime.fake_provider as fp

    short = fake.removeprefix("fake_")
    folder = Path(fp.__file__).parent / "backends" / short
    data = json.loads((folder / f"{'conf' if what == 'configuration' else 'props'}_{short}.json").read_text())
    data["backend_name"] = name
    return utc_dates(data) if what == "properties" else data
