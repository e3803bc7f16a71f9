"""The command line through Typer's CliRunner, plus one real Ctrl-C in a subprocess."""

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from qkit import runs
from qkit.cli import app
from qkit.config import GROUPS, EnvConfig, defaults_of

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()
TINY = ["--backbone", "small_cnn", "--head", "linear", "--epochs", "1", "--quiet"]


def one_line_error(result) -> str:
    """The whole stderr of a failed command: exactly one 'error:' line, no traceback."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:") and "Traceback" not in result.output
    return lines[0]


def train_options() -> dict:
    train_cmd = get_command(app).commands["train"]
    return {p.name: p for p in train_cmd.params}


def test_help_lists_the_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("train", "evaluate", "runs"):
        assert command in result.stdout
    bare = runner.invoke(app, [])  # no_args_is_help
    assert "train" in bare.output and bare.exit_code == 0


def test_train_help_explains_the_options():
    result = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in (
        "--dataset",
        "--backbone",
        "--freeze-backbone",
        "--n-qubits",
        "--device",
        "--resume",
        "--runs-dir",
        "--classes",
        "--monitor",
        "--patience",
    ):
        assert option in result.stdout


def test_every_config_field_is_an_option_with_the_same_default():
    options = train_options()
    for cls in (*GROUPS.values(), EnvConfig):
        defaults = defaults_of(cls)
        for field in dataclasses.fields(cls):
            assert field.name in options, f"qkit train has no --{field.name.replace('_', '-')}"
            default = options[field.name].default
            default = getattr(default, "value", default)  # Enum choices
            if field.metadata.get("cli") == "key_value":
                assert default is None and defaults[field.name] == {}
            else:
                assert default == defaults[field.name], field.name


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("qkit ")


def test_help_shows_choices():
    result = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "250"})
    assert "cosine|step|none" in result.stdout and "quantum|linear" in result.stdout
    assert "connector|density|estimator|statevector" in result.stdout and "28, 64, 128, 224" in result.stdout


@pytest.mark.parametrize(
    "args, option",
    [
        (["--device", "tpu"], "--device"),
        (["--epochs", "0"], "--epochs"),
        (["--classes", "abc"], "--classes"),
        (["--monitor", "f1"], "--monitor"),
        (["--backbone", "resnet9000"], "--backbone"),
        (["--lr", "0"], "--lr"),
        (["--ema-decay", "1.5"], "--ema-decay"),
        (["--circuit", "nope"], "--circuit"),
        (["--dataset", "./no/such/folder"], "--dataset"),
        (["--dataset", "kneemnist"], "--dataset"),
        (["--engine-option", "shots"], "--engine-option"),
        (["--engine-option", "shots=3"], "--engine-option"),
        (["--size", "32"], "--size"),
    ],
)
def test_bad_option_values_exit_2_with_one_line(args, option):
    result = runner.invoke(app, ["train", *args])
    assert result.exit_code == 2
    assert option in one_line_error(result)


def test_missing_data_is_one_line_exit_1(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(
        app, ["train", *TINY, "--data-dir", str(empty), "--no-download", "--runs-dir", str(tmp_path / "runs")]
    )
    assert result.exit_code == 1
    assert "breastmnist.npz not found" in one_line_error(result)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # no empty run folder


def test_missing_dataset_folder_says_so(tmp_path):
    result = runner.invoke(app, ["train", *TINY, "--dataset", "./no/such/folder", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "dataset folder ./no/such/folder does not exist" in one_line_error(result)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "args", [["--backbone", "resnet9000"], ["--circuit", "nope"], ["--dataset", "./no/such"], ["--engine", "tpu"]]
)
def test_usage_errors_answer_without_importing_torch_or_qiskit(args):
    code = (
        "import sys; from qkit.cli import app; rc = app(" + repr(["train", *args]) + ", standalone_mode=False); "
        "print(rc, [m for m in ('torch', 'qiskit', 'medmnist') if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "2 []", done.stdout + done.stderr
    assert done.stderr.count("error:") == 1


def test_cuda_device_is_a_valid_option_value(tmp_path):
    import torch

    result = runner.invoke(app, ["train", *TINY, "--device", "cuda:0", "--runs-dir", str(tmp_path)])
    if not torch.cuda.is_available():
        assert result.exit_code == 1 and "CUDA is not available" in one_line_error(result)


@pytest.mark.slow
def test_train_then_runs_then_evaluate(data_root, tmp_path):
    common = ["--runs-dir", str(tmp_path)]
    result = runner.invoke(
        app, ["train", *TINY, "--data-dir", str(data_root), "--name", "cli-run", *common], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert "auc" in result.stdout and "cli-run" in result.stdout
    run_dir = tmp_path / "cli-run"
    assert (run_dir / "test_metrics.json").is_file()
    auc = runs.read_json(run_dir / "test_metrics.json")["auc"]
    assert f"{auc:.4f}" in result.stdout

    listed = runner.invoke(app, ["runs", *common], env={"COLUMNS": "200"})
    assert listed.exit_code == 0 and "cli-run" in listed.stdout and "finished" in listed.stdout

    scored = runner.invoke(app, ["evaluate", "cli-run", "--split", "val", *common], env={"COLUMNS": "200"})
    assert scored.exit_code == 0, scored.output
    [evaluation] = runs.load_run(run_dir).evaluations()
    assert runs.read_json(evaluation / "metrics.json")["n"] == 78
    assert (evaluation / "predictions-val-statevector.csv").is_file()

    again = runner.invoke(app, ["train", *TINY, "--data-dir", str(data_root), "--name", "cli-run", *common])
    assert again.exit_code == 1 and "already exists" in one_line_error(again)
    resumed = runner.invoke(app, ["train", "--resume", "cli-run", "--epochs", "3", *common])
    assert resumed.exit_code == 1 and "--epochs" in one_line_error(resumed)
    # Environment options may change on resume (another machine, another data folder).
    moved = runner.invoke(
        app,
        [
            "train",
            "--resume",
            "cli-run",
            "--data-dir",
            str(data_root),
            "--device",
            "cpu",
            "--num-workers",
            "0",
            *common,
        ],
    )
    assert moved.exit_code == 0, moved.output
    missing = runner.invoke(app, ["evaluate", "no-such-run", *common])
    assert missing.exit_code == 1 and "not found" in one_line_error(missing)


@pytest.mark.slow
def test_ctrl_c_says_how_to_resume_and_resume_finishes(data_root, tmp_path):
    """A real SIGINT to `python -m qkit train`, then `qkit train --resume` completes the run."""
    # 6 epochs: SIGINT follows the first one (milliseconds after its metrics line), so even a
    # loaded machine cannot finish the other five first.
    cmd = [
        sys.executable,
        "-m",
        "qkit",
        "train",
        "--backbone",
        "small_cnn",
        "--head",
        "linear",
        "--epochs",
        "6",
        "--data-dir",
        str(data_root),
        "--runs-dir",
        str(tmp_path),
        "--name",
        "stopped",
        "-q",
    ]
    # A shell that starts CI in the background (`.ci/run &`) sets SIGINT to "ignore", and Python
    # keeps an inherited ignore: the child gets the default a terminal gives, as a user's would.
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "300"},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    metrics = tmp_path / "stopped" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.is_file() and metrics.read_text().strip()) and proc.poll() is None:
        assert time.monotonic() < deadline, "no epoch finished in 120 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)  # during epoch 2 of 6
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "qkit train --resume" in lines[0] and "stopped" in lines[0]
    assert not (tmp_path / "stopped" / "test_metrics.json").exists()

    result = runner.invoke(app, ["train", "--resume", str(tmp_path / "stopped"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert [r["epoch"] for r in runs.read_jsonl(metrics)] == list(range(1, 7))
    assert (tmp_path / "stopped" / "test_metrics.json").is_file()


@pytest.mark.slow
def test_circuit_from_an_openqasm_file(data_root, tmp_path):
    """`--circuit path/to.qasm` trains with the file's circuit, as the README promises."""
    qasm = REPO / "circuits" / "basic_entangler.qasm"
    result = runner.invoke(
        app,
        [
            "train",
            "--backbone",
            "small_cnn",
            "--epochs",
            "1",
            "--quiet",
            "--circuit",
            str(qasm),
            "--data-dir",
            str(data_root),
            "--runs-dir",
            str(tmp_path),
            "--name",
            "qasm",
        ],
    )
    assert result.exit_code == 0, result.output
    run = runs.load_run(tmp_path / "qasm")
    assert run.config.model.circuit == str(qasm.resolve()) and run.status == "finished"
