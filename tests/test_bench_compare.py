"""benchmarks/compare.py (issue #15): its aggregation, schedule and options, and one short run (no timing asserted)."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import compare  # noqa: E402
import compare_worker  # noqa: E402

HAS_TORCH = importlib.util.find_spec("torch") is not None


def test_ratio_range_pairs_the_worst_and_best_processes():
    nb, th = compare.summarize([0.010, 0.012, 0.020]), compare.summarize([0.030, 0.024, 0.036])
    assert nb == {"median": 0.012, "min": 0.010, "max": 0.020, "n": 3}
    r = compare.ratio(th, nb)
    assert r["median"] == pytest.approx(0.030 / 0.012)
    assert r["min"] == pytest.approx(0.024 / 0.020) and r["max"] == pytest.approx(0.036 / 0.010)


def test_aggregate_keeps_modes_apart_and_compares_numbacnn_with_its_one_thread_figure():
    def run(worker, lib, threads, median, case="step-d2l"):
        return {"worker": worker, "lib": lib, "threads": threads, "median": median, "case": case, "examples": 256}
    runs = [run("numbacnn", "numbacnn", 1, 0.04), run("numbacnn", "numbacnn", 1, 0.02),
            run("numbacnn", "numbacnn", 2, 0.01), run("numbacnn", "numbacnn", 2, 0.03),
            run("torch", "torch", 2, 0.05), run("torch", "torch", 2, 0.07),
            run("both", "numbacnn", 2, 0.02), run("both", "torch", 2, 0.08)]
    rows = {r["threads"]: r for r in compare.aggregate(runs)}
    two = rows[2]
    assert two["separate:numbacnn"]["median"] == pytest.approx(0.02)
    assert two["separate:ratio"]["median"] == pytest.approx(0.06 / 0.02)
    assert two["separate:ratio"]["min"] == pytest.approx(0.05 / 0.03)
    assert two["in-process:ratio"]["median"] == pytest.approx(4.0)
    assert two["numbacnn_vs_1_thread"] == pytest.approx(0.03 / 0.02)
    assert "separate:ratio" not in rows[1] and "numbacnn_vs_1_thread" not in rows[1]
    md = compare.markdown({"environment": dict(_env(), threads=[1, 2]), "correctness": {"summary": "passed"},
                           "rows": list(rows.values())})
    assert "| step-d2l | 2 | 20 ms (10-30) | 60 ms (50-70) | **3.00x** (1.67-7.00) | **4.00x** (4.00-4.00) " \
           "| 12,800 / 4,267 | 1.50x |" in md


def _env():
    return {"date": "d", "command": "c", "cpu": "cpu", "cores": 2, "usable_cores": 2, "python": "3", "numbacnn": "0",
            "numba": "0", "numpy": "2", "torch": "2", "threading_layer": "omp", "threads": [2], "rounds": 2,
            "repeats": 3, "warmup": 2, "batch": 256, "load": 1, "env": {"A": "1"}, "nb_env": {}, "dropped_env": [],
            "in_process": True, "load_average_end": 1.0}


def test_schedule_alternates_and_flips_every_round():
    libs = [lib for _, lib, _ in compare.schedule(3, ["numbacnn", "torch"], [2])]
    assert libs == ["numbacnn", "torch", "torch", "numbacnn", "numbacnn", "torch"]
    jobs = compare.schedule(2, ["numbacnn", "torch"], [1, 2], in_process=True)
    assert len(jobs) == 12 and [j[1:] for j in jobs[6:]] == [j[1:] for j in jobs[:6]][::-1]
    assert {r for r, _, _ in jobs} == {0, 1}


def test_worker_env_drops_openblas_and_gives_nb_env_to_numbacnn_only():
    base = {"OPENBLAS_CORETYPE": "Haswell", "PATH": "/bin"}
    both, nb = [("OMP_WAIT_POLICY", "PASSIVE")], [("NUMBA_THREADING_LAYER", "workqueue")]
    assert compare.worker_env(base, both, nb, "torch") == {"PATH": "/bin", "OMP_WAIT_POLICY": "PASSIVE"}
    for lib in ("numbacnn", "both", "check"):
        assert compare.worker_env(base, both, nb, lib)["NUMBA_THREADING_LAYER"] == "workqueue"


@pytest.mark.parametrize("argv, words", [
    (["--env", "OMP_WAIT_POLICY"], ["--env", "KEY=VALUE", "'OMP_WAIT_POLICY'"]),
    (["--nb-env", "=x"], ["--nb-env", "'=x'"]),
    (["--threads", "0,2"], ["--threads", "'0,2'"]),
    (["--rounds", "0"], ["--rounds", "0"]),
    (["--cases", ","], ["--cases"]),
])
def test_bad_options_give_argparse_errors(argv, words, capsys):
    with pytest.raises(SystemExit) as exc:
        compare.parse_args(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "Traceback" not in err
    assert all(w in err.splitlines()[-1] for w in words), err


def test_options_parse():
    args = compare.parse_args(["--env", "A=1=2", "--nb-env", "B=", "--threads", "2,1,2", "--ops", "--no-torch"])
    assert args.env == [("A", "1=2")] and args.nb_env == [("B", "")] and args.threads == [1, 2]
    assert args.case_list == ["step-d2l", "step-modern", "ops"] and args.torch is False


def test_op_case_names_are_unique_slugs():
    from ops import Case

    cases = [Case("op", "linear 400->120 forward", "8x400 -> 120", None, None, None),
             Case("op", "sigmoid forward", "8x6x28x28", None, None, None),
             Case("op", "sigmoid forward", "8x120", None, None, None)]
    assert compare_worker.op_case_names(cases, 8) == ["linear-400-120-forward", "sigmoid-forward-6x28x28",
                                                      "sigmoid-forward-120"]


def test_max_mismatch_uses_atol_plus_rtol_and_names_the_first():
    n, diff, first = compare_worker.max_mismatch(np.float32([1.0, 2.0, 3.0]), np.float32([1.0, 2.1, 3.0]), 1e-4, 1e-5)
    assert n == 1 and diff == pytest.approx(0.1, abs=1e-6) and first.startswith("(1,): 2 vs 2.1")
    assert compare_worker.max_mismatch([1.0001], [1.0], 1e-4, 1e-5)[0] == 0


def test_smoke_run_writes_every_sample(tmp_path):
    out = tmp_path / "cmp.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "compare.py"), "--rounds", "1", "--repeats", "1",
                           "--cases", "step-d2l", "--batch", "8", "--json", str(out)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| step-d2l |" in proc.stdout and "passed" in proc.stdout
    result = json.loads(out.read_text())
    assert result["correctness"]["ok"] and result["correctness"]["reference"] == ("torch" if HAS_TORCH else
                                                                                 "numbacnn kernel 1 (formula)")
    libs = {run["lib"] for run in result["runs"]}
    assert libs == ({"numbacnn", "torch"} if HAS_TORCH else {"numbacnn"})
    assert all(len(run["samples"]) == 1 and run["examples"] == 8 for run in result["runs"])
    nb_workers = [w for w in result["workers"] if w["lib"] == "numbacnn"]
    assert nb_workers and not any(w["torch_loaded"] for w in nb_workers)  # numbacnn's process never loads torch
    if HAS_TORCH:
        assert not any(w["numba_loaded"] for w in result["workers"] if w["lib"] == "torch")
        assert "separate:ratio" in result["rows"][0]
