"""`numbacnn cuda-check` from a plain process (tests/test_cuda_check_cli.py): the real entry point switches the
simulator on itself; the formula and tiled conv2d kernels pass clean and tiling reads global memory less."""
import re
import subprocess
import sys

import pytest

LAST = re.compile(r"^conv2d kernel(\d): ([\d,]+) global reads, ([\d,]+) global writes, ([\d,]+) shared reads, "
                  r"([\d,]+) shared writes, (\d+) races, (\d+) out-of-bounds, (\d+) uninitialised shared reads$")


def _cuda_check(*args):
    return subprocess.run([sys.executable, "-m", "numbacnn", "cuda-check", *args], capture_output=True, text=True,
                          timeout=600)


def test_conv2d_kernels_1_and_2_pass_and_tiling_reads_less():
    counts = {}
    for k in ("1", "2"):
        proc = _cuda_check("conv2d", "--kernel", k)
        assert proc.returncode == 0, proc.stderr
        m = LAST.match(proc.stdout.strip().splitlines()[-1])
        assert m, proc.stdout
        assert m.group(1) == k and m.groups()[5:] == ("0", "0", "0")
        counts[k] = [int(v.replace(",", "")) for v in m.groups()[1:5]]
        assert "result vs the CPU kernels: equal" in proc.stdout
    assert counts["2"][0] < counts["1"][0], "the tiled kernel must read global memory less"
    assert counts["1"][2] == 0 < counts["2"][2]


@pytest.mark.parametrize("args,message", [
    (["conv2d", "--kernel", "3"], "conv2d has CUDA kernels 1, 2, got 3"),
    (["convolve"], "Invalid value for 'OP'"),
    (["conv2d", "--size", "40x40"], "each side must be 1 to 32"),
    (["conv2d", "--device", "cuda"], "Invalid value for '--device'"),
    (["all", "--kernel", "1"], "cannot be used with OP all"),
])
def test_usage_errors_exit_2_without_a_traceback(args, message):
    proc = _cuda_check(*args)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_explore_cuda_writes_the_page_from_a_plain_process(tmp_path):
    """`numbacnn explore cuda` switches the simulator on itself (numba is not loaded yet when it starts)."""
    out = tmp_path / "cuda.html"
    proc = subprocess.run([sys.executable, "-m", "numbacnn", "explore", "cuda", "--cuda-kernel", "1", "-o", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    html = out.read_text()
    assert "conv2d_forward_kernel1" in html and "conv2d_forward_kernel2" in html and '"cuda":"1"' in html
