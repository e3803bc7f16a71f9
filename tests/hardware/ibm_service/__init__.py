"""A local IBM Quantum Platform for tests: qiskit-ibm-runtime's real client, every class of it,
talks HTTP to this server on 127.0.0.1 instead of IBM's.

Not shipped with qkit; tests start one per test (``LocalIBMQuantum().start()``, a free port),
point an account at it the documented way (``save_account`` into a temporary home folder, plus
the IBM Cloud SDK's own endpoint variables) and stop it afterwards. What is served is the
subset of the REST API the client calls for what qkit does, found by reading
``qiskit_ibm_runtime/api/`` (0.51) and the IBM Cloud SDK it uses:

- IAM (``IAM_URL``): ``POST /iam/identity/token``, an API key for a JWT access token;
- Global Search and Global Catalog (``GLOBAL_SEARCH_URL``, ``GLOBAL_CATALOG_URL``, which the
  SDK's ``configure_service`` reads): the account's one instance and its plan;
- the Qiskit Runtime API under ``/experimental/api/v1`` (an account URL containing
  "experimental" is used as it is by the runtime's URL resolver, so the port survives):
  backends (list, configuration, properties, status: a fake backend's own calibration files
  served under an ``ibm_`` name), batch sessions, jobs (submit, status, results, cancel,
  metrics with the billed usage).

Submitted jobs are executor programs (the runtime's ``QuantumProgramModel`` v2.0, decoded with
the runtime's own converters); a worker thread runs them in order, like a device's queue, on
Aer with the fake backend's calibrated noise (``qkit.hardware.wide``: each independent part of
a wide circuit on its own qubits, the emulation ``--backend fake_<name>`` uses), and answers in
the runtime's ``QuantumProgramResultModel``. The ledger records every job accepted. A test
can hold jobs in the queue, fail or cancel the next job, answer an HTTP status a number of
times, or drop connections. Loopback only; every loop is bounded.
"""

from ibm_service.service import API, FAKES, Fault, Job, LocalIBMQuantum

__all__ = ["API", "FAKES", "Fault", "Job", "LocalIBMQuantum"]
