"""The full check with the library's capacity test (a worker subprocess each), and the cost projection against it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from pai_sweep.check import run_check

CASES = {
    "mlp": ["model=mlp", "dendrites=linear_only"],
    "small_cnn": ["model=small_cnn", "dendrites=cnn"],
    "resnet18": ["model=resnet18", "model.width_mult=0.125", "data=digits32", "dendrites=resnet"],
    "transformer": ["model=transformer", "dendrites=transformer"],
    "custom_auto": ["model=custom", "model._target_=check_nets.ConvTokens", "dendrites=auto"],
}


@pytest.fixture(scope="module")
def checked(tmp_path_factory, nets_on_path, tiny):
    """name -> CheckResult for every case; two workers at a time."""
    root = tmp_path_factory.mktemp("capacity")
    cfgs = {name: tiny(*ov) for name, ov in CASES.items()}  # compose is not thread-safe: before the pool
    with ThreadPoolExecutor(max_workers=2) as pool:
        jobs = {name: pool.submit(run_check, cfg, root / name, True, 2) for name, cfg in cfgs.items()}
        return {name: job.result() for name, job in jobs.items()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_capacity_test_adds_three_dendrites(name, checked):
    r = checked[name]
    assert r.ok, r.verdict
    cap = r.capacity
    assert cap["ok"] and cap["dendrites_added"] == 3, cap
    assert {0, 3} <= set(cap["seconds_by_dendrites"]) and cap["seconds_by_dendrites"][3] > 0
    assert cap["peak_memory_mb"] > 0 and cap["memory_kind"] == "cpu_max_rss"
    assert "capacity test: OK: 3 dendrites added" in r.verdict
    assert cap["start"] == "warm"  # on a CPU: forked from the warm worker server, no imports to wait for


def test_capacity_test_on_cuda_starts_a_fresh_process(tiny):
    from pai_sweep.preflight import can_run_warm

    assert can_run_warm(tiny("train.device=cpu"))
    assert not can_run_warm(tiny("train.device=cuda"))  # CUDA must never be initialised before a fork


@pytest.mark.parametrize("name", sorted(CASES))
def test_projection_matches_the_real_capacity_test(name, checked):
    r = checked[name]
    projected = {row["dendrites"]: row["params"] for row in r.cost["dendrites"]}
    measured = r.capacity["params_by_dendrites"]
    assert set(measured) == {0, 1, 2, 3}
    for dendrites, params in measured.items():
        assert projected[dendrites] == params, (dendrites, projected, measured)


def test_top_k_projection_is_cheaper(checked):
    rows = checked["small_cnn"].cost["top_k"]
    assert [row["k"] for row in rows] == [1, 2, 3]
    assert rows[0]["modules"] == [".head"]
    assert rows[0]["params"][0] < rows[-1]["params"][0] == checked["small_cnn"].cost["dendrites"][1]["params"]



def test_the_check_process_never_imports_torch_on_a_cpu(tmp_path):
    """`pai-sweep check` on a CPU: the static checks and the capacity test both run in children forked from the
    warm worker server, so the command's own process imports neither torch nor scikit-learn."""
    import json
    import subprocess
    import sys

    script = ("import sys; from pai_sweep.cli import main; code = main(sys.argv[1:]); "
              "print('imported:', sorted(m for m in ('torch', 'sklearn', 'perforatedai') if m in sys.modules)); sys.exit(code)")
    out = tmp_path / "check"
    proc = subprocess.run([sys.executable, "-c", script, "check", "data.limit=120", "train.batch_size=32", "train.device=cpu", "model=mlp", "dendrites=linear_only", "--out", str(out),
                           "--capacity-batches", "2"], capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "imported: []" in proc.stdout
    found = json.loads((out / "check.json").read_text())
    assert found["ok"] and found["capacity"]["start"] == "warm" and found["inspection"]["total_params"] > 0
