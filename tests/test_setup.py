"""setup.py builds one extension per kernel file, and finds them from the files."""
import os
import runpy

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def setup_module():
    pytest.importorskip("Cython")
    return runpy.run_path(os.path.join(ROOT, "setup.py"), run_name="fastnn_setup")


def test_every_kernel_file_is_built(setup_module):
    names = setup_module["kernel_names"]()
    files = sorted(f[:-4] for f in os.listdir(os.path.join(ROOT, "fastnn", "_kernels"))
                   if f.endswith(".pyx"))
    assert names == files and "dense" in names and "engine" in names


def test_kernels_are_found_from_the_files(setup_module, tmp_path):
    folder = tmp_path / "fastnn" / "_kernels"
    folder.mkdir(parents=True)
    for name in ("b", "a"):
        (folder / f"{name}.pyx").write_text("")
    (folder / "a.pxd").write_text("")
    assert setup_module["kernel_names"](str(tmp_path)) == ["a", "b"]
    for f in folder.iterdir():
        f.unlink()
    with pytest.raises(RuntimeError, match="no kernels"):
        setup_module["kernel_names"](str(tmp_path))
