"""What ran where: Python, platform, package versions, git commit, device, threads."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from qkit.version import __version__

PACKAGES = (
    "torch",
    "torchvision",
    "qiskit",
    "qiskit-machine-learning",
    "qiskit-aer",
    "qiskit-ibm-runtime",
    "medmnist",
    "scikit-learn",
    "numpy",
    "matplotlib",
    "typer",
    "rich",
)


def _package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _git(args: list[str], cwd: Path) -> str | None:
    # GIT_OPTIONAL_LOCKS=0: `git status` must not take the index lock of a repo in use.
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, env=env, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def git_info() -> dict | None:
    """Commit and dirty flag of the repo holding the qkit package, else the working directory.

    The package comes first because its commit identifies the code that ran; a pip-installed
    qkit is not in a repo, and then the user's workspace repo is the next best record.
    """
    for where in (Path(__file__).resolve().parent, Path.cwd()):
        root = _git(["rev-parse", "--show-toplevel"], where)
        if not root:
            continue
        commit = _git(["rev-parse", "HEAD"], where)  # None in a repo without commits
        status = _git(["status", "--porcelain", "--untracked-files=no"], where)
        return {"root": root, "commit": commit, "dirty": None if status is None else bool(status)}
    return None


def environment_info(device: str) -> dict:
    """What ran where: Python, platform, package versions, git state, device, threads and the
    CPU instruction set torch computes with (``cpu_capability``: the same seed can train a
    different model on a CPU with another one, since its kernels sum in another order)."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "platform": platform.platform(),
        "packages": _package_versions(),
        "git": git_info(),
        "device": str(device),
        "cpu_count": os.cpu_count(),
        "torch_threads": None,
        "cpu_capability": None,
        "cuda_available": False,
        "cuda_device": None,
        "qkit": __version__,
    }
    try:
        import torch
    except ImportError:
        return info
    info["torch_threads"] = torch.get_num_threads()
    info["cpu_capability"] = torch.backends.cpu.get_cpu_capability()  # e.g. AVX2, AVX512
    info["cuda_available"] = bool(torch.cuda.is_available())
    if info["cuda_available"]:
        try:
            dev = torch.device(device) if str(device).startswith("cuda") else torch.device("cuda")
            info["cuda_device"] = torch.cuda.get_device_name(dev)
            info["cuda_version"] = torch.version.cuda
        except (RuntimeError, ValueError):
            pass
    return info
