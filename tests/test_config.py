import os
import subprocess
import sys

import pytest

import fastnn
from fastnn._kernels._threads import CPU_LIMIT, openmp_enabled


@pytest.mark.skipif(bool(os.environ.get("FASTNN_SKIP_OPENMP_TEST")),
                    reason="FASTNN_SKIP_OPENMP_TEST is set: a serial build is expected")
def test_openmp_is_compiled_in():
    assert openmp_enabled(), "fastnn was built without OpenMP (set FASTNN_SKIP_OPENMP_TEST to allow)"


def test_set_and_get_num_threads():
    default = fastnn.get_num_threads()
    try:
        fastnn.set_num_threads(1)
        assert fastnn.get_num_threads() == 1
        fastnn.set_num_threads(3)
        assert fastnn.get_num_threads() == (min(3, CPU_LIMIT) if openmp_enabled() else 1)
    finally:
        fastnn.set_num_threads(None)
    assert fastnn.get_num_threads() == default
    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(ValueError):
            fastnn.set_num_threads(bad)


def _printed(expression, **env):
    """What a new Python process with `env` added prints for `expression` after importing
    fastnn."""
    out = subprocess.run([sys.executable, "-c", f"import fastnn; print({expression})"],
                         env=dict(os.environ, **env), capture_output=True, text=True,
                         check=True)
    return out.stdout.strip()


@pytest.mark.skipif(not openmp_enabled(), reason="serial build")
def test_omp_num_threads_is_honoured():
    assert _printed("fastnn.get_num_threads()", OMP_NUM_THREADS="1") == "1"


def test_show_config_prints_the_essentials(capsys):
    fastnn.show_config()
    text = capsys.readouterr().out
    assert fastnn.__version__ in text
    for word in ("openmp", "threads", "blas", "float32", "float64"):
        assert word in text
    cfg = fastnn.config()
    assert cfg["threads"] == fastnn.get_num_threads()
    assert cfg["openmp"] == openmp_enabled()


def _cpu_has(flag):
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and flag in line.split() for line in f)
    except OSError:
        return False


@pytest.mark.skipif(fastnn.config()["blas_core"] is None or not _cpu_has("avx2"),
                    reason="the BLAS's kernels are not named, or no AVX2")
def test_the_blas_kernels_are_reported_as_openblas_chose_them():
    # OPENBLAS_CORETYPE makes the choice of an OpenBLAS built for several CPUs (scipy's);
    # its Haswell kernels need AVX2. One built for a single CPU names that one whatever.
    names = {c: _printed("fastnn.config()['blas_core']", OPENBLAS_CORETYPE=c)
             for c in ("Haswell", "Prescott")}
    if names["Haswell"] == names["Prescott"]:
        pytest.skip(f"an OpenBLAS built for {names['Haswell']} alone")
    assert names["Haswell"] == "Haswell"
