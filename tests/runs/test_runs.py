"""Run folders: atomic writes, JSON lines, naming, environment capture, listing, redaction."""

import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from qkit import runs
from qkit.config import EnvConfig, TrainConfig
from qkit.errors import QkitError
from qkit.runs import (
    append_jsonl,
    atomic_torch_save,
    atomic_write,
    atomic_write_json,
    atomic_write_text,
    create_run_dir,
    environment_info,
    find_run,
    list_runs,
    read_json,
    read_jsonl,
    redact,
)


def test_atomic_write_text_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "notes.txt"  # parent created on demand
    atomic_write_text(target, "first")
    atomic_write_text(target, "second ✓")
    assert target.read_text(encoding="utf-8") == "second ✓"
    assert os.listdir(target.parent) == ["notes.txt"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


def test_failed_write_keeps_old_file_and_no_temp(tmp_path):
    target = tmp_path / "config.json"
    atomic_write_json(target, {"ok": True})

    def crash_midway(f):
        f.write(b'{"half": ')
        raise KeyboardInterrupt  # e.g. Ctrl-C during a checkpoint write

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, crash_midway)
    assert read_json(target) == {"ok": True}
    assert os.listdir(tmp_path) == ["config.json"]
    with pytest.raises(TypeError):  # unserialisable: fails before touching the file
        atomic_write_json(target, {"bad": object()})
    assert read_json(target) == {"ok": True}
    assert os.listdir(tmp_path) == ["config.json"]


def test_atomic_write_json_makes_plain_json(tmp_path):
    obj = {
        "auc": np.float32(0.75),
        "n": np.int64(3),
        "loss": float("nan"),
        "path": Path("/x"),
        "shape": (2, 3),
        "arr": np.array([1.5, 2.5]),
        "flag": np.bool_(True),
    }
    atomic_write_json(tmp_path / "m.json", obj)
    text = (tmp_path / "m.json").read_text()
    assert "NaN" not in text
    assert json.loads(text) == {
        "auc": 0.75,
        "n": 3,
        "loss": None,
        "path": "/x",
        "shape": [2, 3],
        "arr": [1.5, 2.5],
        "flag": True,
    }


def test_atomic_torch_save_round_trip(tmp_path):
    import torch

    state = {"w": torch.arange(6.0).reshape(2, 3)}
    path = atomic_torch_save(state, tmp_path / "best.pt")
    loaded = torch.load(path, weights_only=True)
    assert torch.equal(loaded["w"], state["w"])
    assert os.listdir(tmp_path) == ["best.pt"]


def test_jsonl_append_and_read(tmp_path):
    path = tmp_path / "metrics.jsonl"
    for epoch in (1, 2, 3):
        append_jsonl(path, {"epoch": epoch, "val_auc": np.float64(0.5 + epoch / 10)})
    assert [r["epoch"] for r in read_jsonl(path)] == [1, 2, 3]
    assert path.read_text().count("\n") == 3
    with pytest.raises(TypeError):
        append_jsonl(path, [1, 2])


def test_jsonl_tolerates_truncated_last_line_and_recovers(tmp_path):
    path = tmp_path / "metrics.jsonl"
    append_jsonl(path, {"epoch": 1})
    with open(path, "a") as f:
        f.write('{"epoch": 2, "val_')  # a crash cut this write short
    assert read_jsonl(path) == [{"epoch": 1}]
    append_jsonl(path, {"epoch": 2})  # resume: the new record must start on its own line
    with pytest.raises(QkitError, match="line 2"):  # the partial line is now in the middle
        read_jsonl(path)
    lines = path.read_text().splitlines()
    assert json.loads(lines[-1]) == {"epoch": 2}


def test_read_errors_are_one_line_qkit_errors(tmp_path):
    with pytest.raises(QkitError, match="not found"):
        read_json(tmp_path / "missing.json")
    with pytest.raises(QkitError, match="not found"):
        read_jsonl(tmp_path / "missing.jsonl")
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(QkitError, match="invalid JSON") as exc:
        read_json(tmp_path / "bad.json")
    assert "\n" not in str(exc.value)
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\n[1, 2]\n')
    with pytest.raises(QkitError, match="not a JSON object"):
        read_jsonl(tmp_path / "bad.jsonl")


def test_create_run_dir_unique_names(tmp_path, monkeypatch):
    root = tmp_path / "deep" / "runs"
    first = create_run_dir(root, None, "breast-quantum")
    assert re.fullmatch(r"\d{8}-\d{6}-breast-quantum", first.name)
    assert first.is_dir() and first.parent == root
    # Freeze the clock so that the next names collide with each other.
    monkeypatch.setattr(runs.folders.time, "strftime", lambda fmt: "20240102-030405")
    names = [create_run_dir(root, None, "p").name for _ in range(3)]
    assert names == ["20240102-030405-p", "20240102-030405-p-2", "20240102-030405-p-3"]
    assert create_run_dir(root, None, "a b/c").name == "20240102-030405-a_b_c"


def test_create_run_dir_explicit_name_never_overwrites(tmp_path):
    run = create_run_dir(tmp_path, "baseline", "p")
    assert run == tmp_path / "baseline"
    (run / "config.json").write_text("{}")
    with pytest.raises(QkitError, match="already exists"):
        create_run_dir(tmp_path, "baseline", "p")
    assert (run / "config.json").read_text() == "{}"
    for bad in ("../escape", "a/b", "", ".hidden"):
        with pytest.raises(QkitError, match="invalid run name"):
            create_run_dir(tmp_path, bad, "p")
    (tmp_path / "file").write_text("x")
    with pytest.raises(QkitError, match="not a directory"):
        create_run_dir(tmp_path / "file", None, "p")


def test_environment_info(tmp_path):
    info = environment_info("cpu")
    json.dumps(info, allow_nan=False)
    assert info["device"] == "cpu"
    assert re.fullmatch(r"3\.\d+\.\d+", info["python"])
    assert set(runs.PACKAGES) <= set(info["packages"])
    assert info["packages"]["numpy"] == np.__version__
    assert info["torch_threads"] >= 1
    assert info["cpu_capability"] == torch.backends.cpu.get_cpu_capability() and info["cpu_capability"]
    assert info["cuda_available"] in (True, False)
    here = Path(runs.__file__).parent
    in_git = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True).returncode == 0
    if in_git:
        assert re.fullmatch(r"[0-9a-f]{40}", info["git"]["commit"])
        assert isinstance(info["git"]["dirty"], bool)


def _write_run(root, name, config=None, metrics=None):
    run = root / name
    run.mkdir()
    if config is not None:
        (run / "config.json").write_text(config if isinstance(config, str) else json.dumps(config))
    if metrics is not None:
        (run / "test_metrics.json").write_text(metrics if isinstance(metrics, str) else json.dumps(metrics))
    return run


def _record(name, **options):
    cfg = TrainConfig.from_options(name=name, **options)
    return runs.RunRecord(name=name, config=cfg, env=EnvConfig(), created="2024-01-02T03:04:05").to_dict()


def test_list_runs_complete_incomplete_broken(tmp_path):
    assert list_runs(tmp_path / "nothing-here") == []
    (tmp_path / ".gitkeep").write_text("")
    finished = _record("b-finished", backbone="resnet18", seed=7)
    _write_run(
        tmp_path,
        "b-finished",
        finished,
        {"auc": 0.81, "accuracy": 0.8, "balanced_accuracy": 0.75, "per_class": {"0": {"precision": 1.0}}},
    )
    _write_run(tmp_path, "a-incomplete", _record("a-incomplete", dataset="pathmnist", head="linear"))
    _write_run(tmp_path, "c-broken-json", "{not json")
    _write_run(tmp_path, "d-empty")
    _write_run(tmp_path, "e-bad-metrics", finished, "[1, ")
    _write_run(tmp_path, "f-unknown-option", {**finished, "config": {"data": {"epochz": 3}}})
    _write_run(tmp_path, "g-future-schema", {**finished, "schema": 99})
    listed = list_runs(tmp_path)
    by_name = {r["name"]: r for r in listed}
    assert [r["name"] for r in listed] == [
        "a-incomplete",
        "b-finished",
        "c-broken-json",
        "d-empty",
        "e-bad-metrics",
        "f-unknown-option",
        "g-future-schema",
    ]
    done = by_name["b-finished"]
    assert done["status"] == "finished"
    assert (done["dataset"], done["backbone"], done["head"], done["circuit"], done["seed"]) == (
        "breastmnist",
        "resnet18",
        "quantum",
        "dressed",
        7,
    )
    assert (done["auc"], done["accuracy"], done["balanced_accuracy"]) == (0.81, 0.8, 0.75)
    assert done["created"] == "2024-01-02T03:04:05"
    assert done["path"] == str(tmp_path / "b-finished")
    assert by_name["a-incomplete"]["status"] == "incomplete"
    assert by_name["a-incomplete"]["dataset"] == "pathmnist"
    for name in ("c-broken-json", "d-empty", "e-bad-metrics", "f-unknown-option", "g-future-schema"):
        assert by_name[name]["status"] == "broken" and by_name[name]["error"], name
        assert "\n" not in by_name[name]["error"]
    assert "epochz" in by_name["f-unknown-option"]["error"]
    assert "schema 99" in by_name["g-future-schema"]["error"]
    json.dumps(listed)


def test_find_run(tmp_path, monkeypatch):
    root = tmp_path / "runs"
    a = create_run_dir(root, "20240101-000000-quantum", "p")
    create_run_dir(root, "20240101-000000-classical", "p")
    assert find_run(root, a.name) == a
    assert find_run(root, str(a)) == a
    assert find_run(root, "20240101-000000-q") == a  # unique prefix
    with pytest.raises(QkitError, match="ambiguous"):
        find_run(root, "20240101")
    with pytest.raises(QkitError, match="not found"):
        find_run(root, "nope")
    monkeypatch.chdir(tmp_path)
    assert find_run(tmp_path / "elsewhere", "runs/20240101-000000-quantum").resolve() == a.resolve()


def test_redact_hides_secrets_at_any_depth():
    cfg = {
        "device": "cpu",
        "ibm": {"Token": "abc", "channel": "ibm_quantum_platform", "instances": [{"API_KEY": "k1", "name": "x"}]},
        "apikey": "k2",
        "db_password": "pw",
        "client_secret": "s",
        "ibm_token": None,
        "tuple": ({"secret": 1},),
    }
    red = redact(cfg)
    assert red["ibm"]["Token"] == "***"
    assert red["ibm"]["instances"][0] == {"API_KEY": "***", "name": "x"}
    assert red["apikey"] == red["db_password"] == red["client_secret"] == "***"
    assert red["tuple"] == ({"secret": "***"},)
    assert red["ibm_token"] is None  # nothing to hide, and shows no token was set
    assert red["device"] == "cpu" and red["ibm"]["channel"] == "ibm_quantum_platform"
    assert cfg["ibm"]["Token"] == "abc"  # the original is untouched
    assert "abc" not in json.dumps(red) and "k1" not in json.dumps(red)
