"""qkit compare: planning, one-line errors, an end-to-end sweep, resume, and worker-count independence."""

import json

import pytest
from typer.testing import CliRunner

from qkit.cli import app
from qkit.compare import plan_sweep, run_sweep
from qkit.config import EnvConfig
from qkit.errors import QkitError

runner = CliRunner()


def one_line_error(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.exit_code != 0 and len(lines) == 1, result.output
    assert lines[0].startswith("error:") and "Traceback" not in result.output
    return lines[0]


def test_plan_pairs_each_hybrid_with_its_twin_in_seed_major_order(tmp_path):
    sweep = plan_sweep(["qkit-default", "hqnn-quanv"], 2, runs_root=tmp_path, options={"epochs": 1})
    assert sweep.presets == ("qkit-default", "qkit-default-classical", "hqnn-quanv", "hqnn-quanv-classical")
    assert sweep.root == tmp_path / "compare-qkit-default-hqnn-quanv"
    jobs = sweep.jobs()
    assert [j.key for j in jobs[:4]] == [f"{p}/seed0" for p in sweep.presets]
    assert jobs[-1].run_dir == sweep.root / "hqnn-quanv-classical" / "seed1"
    assert sweep.pairs() == [("qkit-default", "qkit-default-classical"), ("hqnn-quanv", "hqnn-quanv-classical")]
    alone = plan_sweep(["qkit-default-classical", "hqnn-quanv"], 1, "x", tmp_path, twins=False)
    assert alone.presets == ("qkit-default-classical", "hqnn-quanv") and alone.pairs() == []


@pytest.mark.parametrize(
    "args, expected",
    [
        (["no-such-preset", "--seeds", "2"], "unknown preset 'no-such-preset'"),
        (["qkit-default", "--seeds", "0"], "--seeds must be at least 1"),
        (["qkit-default", "--seeds", "2", "--ray", "127.0.0.1:9"], "no Ray head answers at 127.0.0.1:9"),
        (["qkit-default", "--seeds", "2", "--ray", "ray://nohost"], "invalid Ray address 'ray://nohost'"),
        (["qkit-default", "--seeds", "2", "--epochs", "0"], "--epochs"),
        (["qtl", "--seeds", "2", "--pretrained", "no/such/model.pt"], "no/such/model.pt"),
        (["qkit-default", "--seeds", "2", "--name", "bad/name"], "invalid sweep name"),
        (["qkit-default", "--seeds", "2", "--dataset", "nosuchmnist"], "unknown dataset"),
    ],
)
def test_bad_input_ends_with_one_line(tmp_path, args, expected):
    result = runner.invoke(app, ["compare", *args, "--runs-dir", str(tmp_path)])
    assert expected in one_line_error(result)
    assert not any(tmp_path.iterdir())  # nothing was created


@pytest.mark.slow
def test_sweep_end_to_end_report_and_resume(tmp_path, data_root):
    args = [
        "compare",
        "qkit-default",
        "--seeds",
        "2",
        "--epochs",
        "1",
        "--name",
        "t",
        "--workers",
        "2",
        "--runs-dir",
        str(tmp_path),
        "--data-dir",
        str(data_root),
    ]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "4 of 4 runs to train" in first.stdout
    root = tmp_path / "compare-t"
    runs = [root / p / f"seed{s}" for p in ("qkit-default", "qkit-default-classical") for s in (0, 1)]
    assert all((r / "test_metrics.json").is_file() and (r / "predictions-test-statevector.csv").is_file() for r in runs)
    for name in ("summary.json", "summary.md", "compare.png", "timings.json", "sessions.json"):
        assert (root / name).is_file(), name
    summary = json.loads((root / "summary.json").read_text())
    default = summary["presets"]["qkit-default"]
    assert default["seeds_finished"] == [0, 1] and default["parameters"]["quantum"] == 4
    assert set(default["metrics"]) >= {"auc", "accuracy", "sensitivity", "specificity", "g_mean", "loss"}
    assert summary["presets"]["qkit-default-classical"]["parameters"]["quantum"] == 0
    (pair,) = summary["pairs"]
    assert pair["wilcoxon"]["auc"]["n"] == 2 and "cannot reach p < 0.05" in pair["wilcoxon"]["auc"]["note"]
    boot = pair["bootstrap_auc"]
    assert boot["low"] <= boot["difference"] <= boot["high"]
    assert summary["claims"][0]["verdict"] == "reference"
    (session,) = summary["sessions"]
    assert session["runs"] == 4 and session["executor"] == "2 worker(s)"
    assert 0 < summary["elapsed_seconds"] == session["seconds"]
    report = (root / "summary.md").read_text()
    assert f"the sweep took {summary['elapsed_seconds']:.0f} s from start to end (1 session(s), 2 worker(s))" in report
    assert "Wilcoxon" in report and "bootstrap over test images" in report and "compare.png" in report
    assert summary["pixels"] == "28 px" and "2 seed(s) (0..1) on breastmnist at 28 px, same splits" in report

    # Re-running trains nothing: every finished run is skipped, its files untouched.
    stamps = {r: (r / "test_metrics.json").stat().st_mtime_ns for r in runs}
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "0 of 4 runs to train" in again.stdout
    assert {r: (r / "test_metrics.json").stat().st_mtime_ns for r in runs} == stamps
    # Other options for the same sweep folder would mix different things: refused in one line.
    other = runner.invoke(
        app,
        [
            "compare",
            "qkit-default",
            "--seeds",
            "2",
            "--epochs",
            "2",
            "--name",
            "t",
            "--runs-dir",
            str(tmp_path),
            "--data-dir",
            str(data_root),
        ],
    )
    assert "trained with other options (epochs)" in one_line_error(other)
    threads = runner.invoke(app, [*args, "--threads", "2"])
    assert "trained with 1 thread(s) per run; give --threads 1" in one_line_error(threads)

    # The same sweep as tasks on a local Ray instance: the same runs, bit for bit.
    on_ray = runner.invoke(
        app,
        [
            "compare",
            "qkit-default",
            "--seeds",
            "2",
            "--epochs",
            "1",
            "--name",
            "t-ray",
            "--ray",
            "local",
            "--runs-dir",
            str(tmp_path),
            "--data-dir",
            str(data_root),
        ],
    )
    assert on_ray.exit_code == 0, on_ray.output
    assert "4 of 4 runs to train, as Ray tasks (local) of 1 CPU(s) each" in on_ray.stdout
    ray_summary = json.loads((tmp_path / "compare-t-ray" / "summary.json").read_text())
    for preset, p in summary["presets"].items():
        assert ray_summary["presets"][preset]["metrics"] == p["metrics"]
    for run in runs:
        twin = tmp_path / "compare-t-ray" / run.relative_to(root)
        assert (twin / "predictions-test-statevector.csv").read_text() == (
            run / "predictions-test-statevector.csv"
        ).read_text()


def _interrupt_after_first_epoch(event, info):
    if event == "epoch" and info["epoch"] == 1:
        raise KeyboardInterrupt


@pytest.mark.slow
def test_metrics_do_not_depend_on_the_worker_count_and_interrupted_runs_resume(tmp_path, data_root):
    from qkit.runs import load_run
    from qkit.train import TrainingInterrupted, train

    env = {"data_dir": str(data_root)}
    options = {"epochs": 2}
    one = plan_sweep(["qkit-default"], 2, "w1", tmp_path, twins=False, options=options, env=env)
    two = plan_sweep(["qkit-default"], 3, "w2", tmp_path, twins=False, options=options, env=env)
    # Seed 0 of the 1-worker sweep is interrupted after its first epoch, as Ctrl-C would.
    job = one.jobs()[0]
    with pytest.raises(TrainingInterrupted):
        train(job.config(), EnvConfig(**env, threads=1), job.run_dir.parent, callback=_interrupt_after_first_epoch)
    assert (job.run_dir / "checkpoint.pt").is_file() and not (job.run_dir / "test_metrics.json").exists()

    events = []
    run_sweep(one, workers=1, callback=lambda event, info: events.append((event, info)))
    unfinished_at_first_report = []

    def first_report(event, info):
        if event == "run_done" and not unfinished_at_first_report:
            unfinished_at_first_report.append(sum(j.status() != "finished" for j in two.jobs()))

    run_sweep(two, workers=2, callback=first_report)
    # Each run is reported as it finishes, not all at the end: the third had not finished yet.
    assert unfinished_at_first_report[0] >= 1
    done = [info for event, info in events if event == "run_done"]
    assert [(d["key"], d["resumed"]) for d in done] == [("qkit-default/seed0", True), ("qkit-default/seed1", False)]
    assert events[0][1]["threads"] == 1 and events[0][1]["workers"] == 1
    for a, b in zip(one.jobs(), two.jobs()):
        ra, rb = load_run(a.run_dir), load_run(b.run_dir)
        assert ra.test_metrics["auc"] == rb.test_metrics["auc"]
        assert ra.predictions("test").probs == rb.predictions("test").probs
        assert len(ra.history) == 2


def test_a_folder_without_run_record_counts_as_fresh_and_workers_must_be_positive(tmp_path):
    """A run killed before writing config.json leaves a folder with nothing to resume."""
    sweep = plan_sweep(["qkit-default"], 1, "k", tmp_path, twins=False)
    job = sweep.jobs()[0]
    job.run_dir.mkdir(parents=True)
    assert job.status() == "fresh"
    with pytest.raises(QkitError, match="--workers must be at least 1"):
        run_sweep(sweep, workers=0)


def _three_class_folder(root):
    """90 small grey images in 3 class folders, told apart by brightness (a learnable task)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, name in enumerate(("benign", "malignant", "normal")):
        (root / name).mkdir(parents=True)
        for i in range(30):
            pixels = np.clip(rng.normal(50 + 70 * c, 40, (28, 28)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i:03d}.png")
    return root


@pytest.mark.slow
def test_multiclass_image_folder_sweep_and_a_binary_subset(tmp_path):
    """A 3-class folder end to end through qkit compare, then two of its classes through --classes."""
    folder = _three_class_folder(tmp_path / "images")
    # In this process (--workers 1): the worker pool is the other sweep tests' subject, and each of
    # its spawned workers would import torch and Qiskit afresh for these few-second runs.
    common = [
        "--seeds",
        "2",
        "--epochs",
        "2",
        "--dataset",
        str(folder),
        "--runs-dir",
        str(tmp_path),
        "-q",
        "--workers",
        "1",
    ]
    three = runner.invoke(app, ["compare", "hqnn-quanv", "--name", "three", *common])
    assert three.exit_code == 0, three.output
    summary = json.loads((tmp_path / "compare-three" / "summary.json").read_text())
    assert set(summary["presets"]) == {"hqnn-quanv", "hqnn-quanv-classical"}
    run = tmp_path / "compare-three" / "hqnn-quanv" / "seed1"
    header = (run / "predictions-test-statevector.csv").read_text().splitlines()[0]
    assert header.count("prob_") == 3  # one probability per class
    assert 0.0 <= summary["presets"]["hqnn-quanv"]["metrics"]["auc"]["mean"] <= 1.0
    (pair,) = summary["pairs"]
    assert pair["wilcoxon"]["auc"]["n"] == 2

    binary = runner.invoke(app, ["compare", "qkit-default", "--name", "two", "--classes", "2,1", "--no-twins", *common])
    assert binary.exit_code == 0, binary.output
    metrics = json.loads((tmp_path / "compare-two" / "qkit-default" / "seed0" / "test_metrics.json").read_text())
    assert len(metrics["confusion_matrix"]) == 2 and sum(map(sum, metrics["confusion_matrix"])) == metrics["n"]
    assert metrics["positive_class"] == 1 and "g_mean" in metrics  # malignant, listed second by --classes


@pytest.mark.slow
def test_a_run_that_fails_on_ray_ends_with_one_line_naming_it(tmp_path):
    """The data folder is only read inside the task: its error comes back from Ray in one line."""
    result = runner.invoke(
        app,
        [
            "compare",
            "qkit-default",
            "--seeds",
            "1",
            "--no-twins",
            "--epochs",
            "1",
            "--ray",
            "local",
            "--data-dir",
            str(tmp_path / "empty"),
            "--no-download",
            "--runs-dir",
            str(tmp_path / "runs"),
        ],
    )
    line = one_line_error(result)
    assert line.startswith("error: qkit-default/seed0: ") and "breastmnist.npz" in line
