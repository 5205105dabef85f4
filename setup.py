"""Build fastnn's Cython kernels.

OpenMP is probed at build time: ``-fopenmp`` (gcc, clang), ``/openmp`` (MSVC), or
``-Xpreprocessor -fopenmp -lomp`` (Apple clang). Without it the kernels build
serial, with a warning. Environment switches at build time:

- ``FASTNN_DEBUG=1``: bounds checking on, no optimisation.
- ``FASTNN_NATIVE=0``: no ``-march=native`` (for binaries that move between machines).
"""
import glob
import os
import shutil
import sys
import tempfile
import warnings

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

DEBUG = os.environ.get("FASTNN_DEBUG", "0") == "1"
NATIVE = os.environ.get("FASTNN_NATIVE", "1") == "1"

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": False,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
}

KERNEL_DIR = os.path.join("fastnn", "_kernels")

OPENMP_PROBE = """
#include <omp.h>
int main(void) { int n = 0;
#pragma omp parallel reduction(+:n)
  n += 1;
  return omp_get_max_threads() > 0 && n > 0 ? 0 : 1; }
"""

MVEC_PROBE = """
#include <math.h>
__attribute__((simd("notinbranch"))) float expf(float);
float x[64], y[64];
int main(void) { for (int i = 0; i < 64; i++) y[i] = expf(x[i]); return (int)y[0] - 1; }
"""

PLAIN_PROBE = "int main(void) { return 0; }\n"

ALIAS_CHECKS = "--param=vect-max-version-for-alias-checks=64"


def _compiles(compiler, source, compile_args=(), link_args=()):
    """True when `source` compiles and links with the given flags."""
    tmp = tempfile.mkdtemp(prefix="fastnn-probe-")
    try:
        path = os.path.join(tmp, "probe.c")
        with open(path, "w") as f:
            f.write(source)
        objects = compiler.compile([path], output_dir=tmp, extra_postargs=list(compile_args))
        compiler.link_executable(objects, "probe", output_dir=tmp, extra_postargs=list(link_args))
        return True
    except Exception:  # a failed probe is an answer, whatever the compiler raised
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _openmp_flags(compiler):
    if compiler.compiler_type == "msvc":
        candidates = [(["/openmp"], [])]
    elif sys.platform == "darwin":
        candidates = [(["-Xpreprocessor", "-fopenmp"], ["-lomp"]), (["-fopenmp"], ["-fopenmp"])]
    else:
        candidates = [(["-fopenmp"], ["-fopenmp"])]
    for compile_args, link_args in candidates:
        if _compiles(compiler, OPENMP_PROBE, compile_args, link_args):
            return compile_args, link_args
    return None


class BuildExt(build_ext):
    """build_ext that probes OpenMP, native code generation and glibc's vector libm."""

    def build_extensions(self):
        compiler = self.compiler
        compile_args, link_args, macros = [], [], []
        if compiler.compiler_type == "msvc":
            compile_args.append("/O2")
        else:
            compile_args += ["-O0", "-g"] if DEBUG else ["-O3"]
            # No errno or trap semantics for libm: lets loops over exp/tanh vectorize.
            compile_args += ["-fno-math-errno", "-fno-trapping-math"]
            compile_args.append("-Wno-unreachable-code")
            if NATIVE and _compiles(compiler, PLAIN_PROBE, ["-march=native"]):
                compile_args.append("-march=native")
            # GCC vectorizes a loop over several arrays that may overlap only behind a
            # runtime check of each pair, and gives up beyond 10 checks: an optimizer
            # rule reading its state from one buffer and writing it to another has more
            # (Adam over 235,000 weights: 0.80 ms a step scalar, 0.15 ms vectorized).
            if _compiles(compiler, PLAIN_PROBE, [ALIAS_CHECKS]):
                compile_args.append(ALIAS_CHECKS)
            if sys.platform.startswith("linux") and _compiles(
                    compiler, MVEC_PROBE, ["-O3", "-fno-math-errno", "-fno-trapping-math"]
                    + [a for a in compile_args if a.startswith("-march")], ["-lmvec", "-lm"]):
                macros.append(("FASTNN_HAVE_MVEC", "1"))
                link_args += ["-lmvec", "-lm"]
        openmp = _openmp_flags(compiler)
        if openmp is None:
            warnings.warn("fastnn: the compiler has no OpenMP; the kernels will run on one thread")
        else:
            compile_args += openmp[0]
            link_args += openmp[1]
        for ext in self.extensions:
            ext.extra_compile_args = compile_args + ext.extra_compile_args
            ext.extra_link_args = link_args + ext.extra_link_args
            ext.define_macros = macros + ext.define_macros
        super().build_extensions()


def kernel_names(root=os.path.dirname(os.path.abspath(__file__))):
    """The kernel modules to build: one per ``fastnn/_kernels/*.pyx`` file under `root`."""
    names = sorted(os.path.splitext(os.path.basename(path))[0]
                   for path in glob.glob(os.path.join(root, KERNEL_DIR, "*.pyx")))
    if not names:
        raise RuntimeError(f"no kernels (*.pyx) in {os.path.join(root, KERNEL_DIR)}")
    return names


def _extensions():
    exts = [Extension(f"fastnn._kernels.{name}", [os.path.join(KERNEL_DIR, name + ".pyx")],
                      include_dirs=[np.get_include(), KERNEL_DIR],
                      define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")])
            for name in kernel_names()]
    return cythonize(exts, compiler_directives=DIRECTIVES, nthreads=os.cpu_count() or 1)


if __name__ == "__main__":  # as run by pip and by `python setup.py ...`
    setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExt})
