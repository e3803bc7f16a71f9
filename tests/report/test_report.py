"""qkit report: bootstrap intervals against qkit.metrics, the HTML/markdown built from a run folder alone."""

import re

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from qkit import runs
from qkit.cli import app
from qkit.metrics import score
from qkit.report import stats
from qkit.report.build import build_report

runner = CliRunner()


def test_bootstrap_point_values_are_qkit_metrics_and_inside_their_interval():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 150)
    p0 = np.clip(0.35 * (labels == 0) + rng.uniform(0, 0.65, 150), 0, 1)
    probs = np.column_stack([p0, 1 - p0])
    ci = stats.bootstrap(labels, probs, positive_class=0, threshold=0.4)
    ref = score(labels, probs, 0, val_threshold=0.4)["at_val_threshold"]
    for key in ("auc", "accuracy", "balanced_accuracy", "sensitivity", "specificity", "precision", "f1", "g_mean"):
        assert ci[key]["value"] == pytest.approx(ref[key], abs=1e-12), key
        assert ci[key]["low"] <= ci[key]["value"] <= ci[key]["high"], key
    assert stats.auc(labels == 0, p0) == pytest.approx(roc_auc_score(labels == 0, p0))


def test_threshold_table_includes_the_named_thresholds():
    labels = np.array([0, 0, 1, 1])
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.2, 0.8], [0.6, 0.4]])
    rows = stats.threshold_table(labels, probs, 0, {"val": 0.25})
    val = next(r for r in rows if r["name"] == "val")
    assert (val["tp"], val["fp"], val["tn"], val["fn"]) == (2, 1, 1, 0)


def test_html_report_of_a_run_without_hardware(run_copy):
    result = runner.invoke(app, ["report", str(run_copy)])
    assert result.exit_code == 0, result.output
    html = (run_copy / "report.html").read_text()
    assert 'id="metrics"' in html and "95% CI" in html and 'id="thresholds"' in html
    assert "Hardware" not in html and "Explanations" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing fetched from anywhere
    assert len(re.findall(r'src="data:image/png;base64,', html)) >= 3
    tm = runs.load_run(run_copy).test_metrics
    assert f"{tm['auc']:.4f}" in html and f"{tm['accuracy']:.4f}" in html


def test_markdown_report_links_the_run_figures(run_copy):
    path = build_report(run_copy, "md")
    text = path.read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert links and all((run_copy / link).is_file() for link in links)
    assert "| auc |" in text
    env = runs.read_json(run_copy / "env.json")  # the environment table, with the CPU's instruction set
    assert f"| cpu_capability | {env['cpu_capability']} |" in text and f"| platform | {env['platform']} |" in text


def test_missing_figures_are_redrawn_from_the_run_folder(run_copy):
    for name in ("roc.png", "confusion_matrix.png", "training_curves.png"):
        (run_copy / name).unlink()
    html = build_report(run_copy).read_text()
    assert len(re.findall(r'src="data:image/png;base64,', html)) >= 3
    assert (run_copy / "report-figures" / "roc.png").is_file()


@pytest.mark.slow
def test_report_shows_explanations_and_hardware_runs(run_copy):
    for args in (
        ["explain", str(run_copy), "--n", "2"],
        ["explain", str(run_copy), "--quantum"],
        [
            "run-hardware",
            str(run_copy),
            "--backend",
            "fake_lagos",
            "--shots",
            "64",
            "--seed",
            "1",
            "--layout",
            "default",
        ],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    html = build_report(run_copy).read_text()
    assert 'id="hardware"' in html and "fake_lagos" in html and "<details>" in html
    assert "Explanations" in html and "linear probe AUC" in html and "log-odds" in html


@pytest.mark.slow
def test_report_shows_a_noise_study_as_a_table(run_copy):
    result = runner.invoke(app, ["noise", "study", str(run_copy), "--vary", "source", "--split", "val"])
    assert result.exit_code == 0, result.output
    html = build_report(run_copy).read_text()
    assert 'id="noise"' in html and "noise study source-fake_lagos" in html
    assert ">readout<" in html and ">relaxation<" in html and "costs the most AUC" in html
    markdown = build_report(run_copy, fmt="md").read_text()
    assert "| source | mitigation | AUC |" in markdown


def test_bad_inputs_are_one_line(tmp_path, run_copy):
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 1 and result.stderr.strip().startswith("error:")
    assert len(result.stderr.strip().splitlines()) == 1
    result = runner.invoke(app, ["report", str(run_copy), "--format", "pdf"])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
