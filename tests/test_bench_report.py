"""bench/report.py's classification, ratios and tables on a small synthetic pytest-benchmark JSON."""
import importlib.util
import json
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "bench" / "report.py"
_spec = importlib.util.spec_from_file_location("bench_report", _PATH)
report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(report)


def _bench(name, group, median, **extra_info):
    return {"name": name, "fullname": f"bench/bench_x.py::{name}", "group": group,
            "stats": {"median": median, "min": median, "mean": median}, "extra_info": extra_info}


DATA = {
    "machine_info": {"cpu": {"brand_raw": "Test CPU 3000", "count": 2}, "system": "Linux",
                     "release": "6.0", "python_version": "3.11.9"},
    "datetime": "2025-01-01T00:00:00",
    "benchmarks": [
        _bench("test_numpy[relu]", "activation relu", 3e-3),
        _bench("test_fastnn[relu-1]", "activation relu", 1.5e-3),
        _bench("test_fastnn[relu-2]", "activation relu", 1e-3),
        _bench("test_forward_numpy[32]", "dense forward batch=32", 40e-6),
        _bench("test_forward_fastnn[32]", "dense forward batch=32", 50e-6),
        _bench("test_epoch_fastnn", "training epoch", 2.0, samples=60000),
        _bench("test_epoch_torch[1thread]", "training epoch", 3.0, samples=60000),
        _bench("test_epoch_numpy", "training epoch", 5.0, samples=60000),
        _bench("test_scipy_only", "peers only", 1e-6),
        _bench("test_latency_fastnn[1]", "busy", 1e-5, p99_ratio=1.5, p50_ratio=1.1),
        _bench("test_latency_torch[1]", "busy", 2e-5, p99_ratio=4.0),
    ],
}


@pytest.mark.parametrize("name, expected", [
    ("test_fastnn[relu-2]", True),
    ("test_forward_fastnn[32]", True),
    ("test_epoch_fastnn", True),
    ("test_fastnn_sparse[0.9]", True),
    ("test_numpy[relu]", False),
    ("test_forward_numpy[32]", False),
    ("test_epoch_torch[2threads]", False),
    ("test_onnx[fastnn]", False),  # parameters do not count
    ("test_fastnnx", False),  # a whole word only
])
def test_is_fastnn(name, expected):
    assert report.is_fastnn(name) is expected


def test_groups_put_fastnn_first_then_by_median():
    groups = report.groups(DATA)
    assert list(groups) == ["activation relu", "dense forward batch=32", "training epoch",
                            "peers only", "busy"]
    assert [e.label for e in groups["activation relu"]] == [
        "fastnn[relu-2]", "fastnn[relu-1]", "numpy[relu]"]
    assert [e.label for e in groups["training epoch"]] == [
        "epoch_fastnn", "epoch_torch[1thread]", "epoch_numpy"]


def test_ratios_are_every_entry_over_every_other_fastnn_entry():
    groups = report.groups(DATA)
    assert report.ratios(groups["activation relu"]) == pytest.approx({
        ("numpy[relu]", "fastnn[relu-1]"): 2.0, ("numpy[relu]", "fastnn[relu-2]"): 3.0,
        ("fastnn[relu-1]", "fastnn[relu-2]"): 1.5, ("fastnn[relu-2]", "fastnn[relu-1]"): 2 / 3})
    assert report.ratios(groups["dense forward batch=32"]) == pytest.approx({
        ("forward_numpy[32]", "forward_fastnn[32]"): 0.8})
    assert report.ratios(groups["training epoch"]) == pytest.approx({
        ("epoch_torch[1thread]", "epoch_fastnn"): 1.5, ("epoch_numpy", "epoch_fastnn"): 2.5})
    assert report.ratios(groups["peers only"]) == {}


def test_table_units_throughput_and_ratio_columns():
    headers, rows = report.table(report.groups(DATA)["training epoch"])
    assert headers == ["contender", "median (s)", "samples/s", "vs epoch_fastnn"]
    assert rows == [["epoch_fastnn", "2", "30,000", ""],
                    ["epoch_torch[1thread]", "3", "20,000", "1.50x"],
                    ["epoch_numpy", "5", "12,000", "2.50x"]]
    headers, rows = report.table(report.groups(DATA)["activation relu"])
    assert headers == ["contender", "median (ms)", "vs fastnn[relu-2]", "vs fastnn[relu-1]"]
    assert rows[0] == ["fastnn[relu-2]", "1", "", "0.67x"]
    assert rows[1] == ["fastnn[relu-1]", "1.5", "1.50x", ""]
    assert rows[-1] == ["numpy[relu]", "3", "3.00x", "2.00x"]


def test_table_has_a_column_per_recorded_ratio():
    headers, rows = report.table(report.groups(DATA)["busy"])
    assert headers == ["contender", "median (us)", "vs latency_fastnn[1]", "p50_ratio",
                       "p99_ratio"]
    assert rows == [["latency_fastnn[1]", "10", "", "1.10x", "1.50x"],
                    ["latency_torch[1]", "20", "2.00x", "", "4.00x"]]


def test_no_benchmark_passes_fastnn_as_a_parameter():
    """report.py reads fastnn's entries from the test's name, never its parameters: a
    test parametrised with the value "fastnn" would be counted as a peer."""
    import ast

    for path in sorted(report.BENCH_DIR.glob("bench_*.py")):
        source = path.read_text()
        for node in ast.parse(source).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                for decorator in node.decorator_list:
                    text = ast.get_source_segment(source, decorator)
                    assert "parametrize" not in text or '"fastnn"' not in text, (
                        path.name, node.name)


@pytest.mark.parametrize("value, text", [
    (0.012345, "0.0123"), (1.2345, "1.23"), (12.345, "12.3"), (123.45, "123"), (4210.4, "4,210")])
def test_numbers_have_no_exponent(value, text):
    assert report._number(value) == text


def test_markdown_report(tmp_path, capsys):
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(DATA))
    assert report.main(["--from-json", str(path), "--markdown"]) == 0
    out = capsys.readouterr().out
    assert "- cpu: Test CPU 3000" in out
    assert "**dense forward batch=32**" in out
    assert "| contender | median (us) | vs forward_fastnn[32] |" in out
    assert "|:---|---:|---:|" in out
    assert "| forward_numpy[32] | 40 | 0.80x |" in out
    assert "(no fastnn entry in this group: no ratios)" in out


def test_text_report_aligns_columns():
    text = report.report({"benchmarks": DATA["benchmarks"][:3]})
    lines = text.splitlines()
    assert lines[0] == "activation relu"
    assert len({len(line) for line in lines[1:]}) == 1  # every row padded to one width
    assert lines[-1].split() == ["numpy[relu]", "3", "3.00x", "2.00x"]


def test_saved_header_is_preferred_over_machine_info():
    data = dict(DATA, fastnn_machine={"cpu": "Saved CPU", "cores": "2"})
    assert report.machine_from_json(data) == {"cpu": "Saved CPU", "cores": "2"}
    assert report.machine_from_json(DATA)["cpu"] == "Test CPU 3000"
