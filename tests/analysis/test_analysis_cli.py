"""`pai-sweep analyze` on the real fixtures, a fresh PerforatedAI run, and bad input (one line, exit 2)."""

from __future__ import annotations

import json
import shutil

import pytest
from run_builder import CAPACITY_RUN, HISTORY_RUN

from pai_sweep.analysis import FINDINGS_JSON_SCHEMA, SEVERITIES, analyze, read_history
from pai_sweep.cli import main
from pai_sweep.errors import AnalysisError


def _check_schema(doc):
    """The parts of FINDINGS_JSON_SCHEMA a consumer relies on (no jsonschema dependency)."""
    assert set(FINDINGS_JSON_SCHEMA["required"]) <= set(doc)
    assert doc["schema_version"] == FINDINGS_JSON_SCHEMA["properties"]["schema_version"]["const"]
    assert set(FINDINGS_JSON_SCHEMA["properties"]["choice"]["required"]) <= set(doc["choice"])
    item = FINDINGS_JSON_SCHEMA["properties"]["findings"]["items"]
    for f in doc["findings"]:
        assert set(item["required"]) <= set(f) and f["severity"] in SEVERITIES
        assert isinstance(f["evidence"], dict) and isinstance(f["recommendation"], dict)


def test_analyze_history_fixture_gives_the_readme_facts(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["analyze", str(HISTORY_RUN), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "dendrites kept          1 (rejected tries: 2)" in text and "1210 -> 2446" in text
    assert "restructures at epochs  16, 22, 32" in text
    doc = json.loads((out / "findings.json").read_text())
    _check_schema(doc)
    s = doc["summary"]
    assert (s["dendrites"], s["epochs"], s["params"]["base"], s["params"]["final"]) == (1, 38, 1210, 2446)
    # the kept dendrite gained 0.19 points (one validation sample of 540): inside the noise, so the plain model is chosen
    assert round(s["best_score"], 2) == 96.30 and doc["choice"]["dendrites"] == 0
    helped = next(f for f in doc["findings"] if f["rule_id"] == "dendrites.did_not_help")
    assert round(helped["effect"], 3) == 0.185 and helped["se"] > helped["effect"] and 0.5 < helped["confidence"] < 0.9
    rejected = [a for a in doc["architectures"] if a["status"] == "rejected"]
    assert {a["params"] for a in rejected} == {2446, 3760} and not any(a["accepted"] for a in rejected)
    assert {"efficiency.low_gain_per_param", "dendrites.rejected_tries"} <= {f["rule_id"] for f in doc["findings"]}
    assert sorted(p.name for p in out.iterdir()) == ["architectures.png", "findings.json", "report.md", "scores.png"]
    assert "| 2 | 3760 |" in (out / "report.md").read_text()


def test_analyze_capacity_fixture_json(tmp_path, capsys):
    run = tmp_path / "tc"
    shutil.copytree(CAPACITY_RUN, run)
    assert main(["analyze", str(run), "--json"]) == 0  # default output: PATH/analysis/
    doc = json.loads(capsys.readouterr().out)
    _check_schema(doc)
    assert doc["summary"]["dendrites"] == 3 and doc["summary"]["params"]["final"] == 5126
    assert doc["choice"] == json.loads((run / "analysis" / "findings.json").read_text())["choice"]
    assert read_history(run).save_name == "tc"  # the analysis/ folder does not confuse a second read


def test_analyze_real_run(real_pai_run, tmp_path):
    folder, epochs = real_pai_run
    a = analyze(folder, out_dir=tmp_path / "a")
    assert a.summary["epochs"] == epochs and a.summary["dendrites"] >= 1
    _check_schema(json.loads((tmp_path / "a" / "findings.json").read_text()))


def _bad(tmp_path, capsys, path, *extra):
    assert main(["analyze", str(path), "--out", str(tmp_path / "o"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pai-sweep: error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_empty_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert "the folder is empty" in _bad(tmp_path, capsys, tmp_path / "empty")


def test_missing_path_and_file_path(tmp_path, capsys):
    assert "no such folder" in _bad(tmp_path, capsys, tmp_path / "nope")
    (tmp_path / "f.csv").write_text("a,b\n")
    assert "not a folder" in _bad(tmp_path, capsys, tmp_path / "f.csv")


def test_unrelated_csvs(tmp_path, capsys):
    d = tmp_path / "other"
    d.mkdir()
    (d / "results.csv").write_text("name,value\na,1\n")
    (d / "data.csv").write_text("x,y\n1,2\n")
    assert "no PerforatedAI output here" in _bad(tmp_path, capsys, d)


def test_scores_named_file_with_foreign_columns(tmp_path, capsys):
    d = tmp_path / "odd"
    d.mkdir()
    (d / "mineScores.csv").write_text("name,value\na,1\n")
    assert "mineScores.csv: not a PerforatedAI file of this kind" in _bad(tmp_path, capsys, d)


def test_truncated_csv_is_left_out_with_one_line(tmp_path, capsys):
    run = shutil.copytree(HISTORY_RUN, tmp_path / "run")
    path = run / "realScores.csv"
    path.write_text(path.read_text()[:-40])  # cut inside the last row
    assert main(["analyze", str(run), "--out", str(tmp_path / "o")]) == 0  # a partial analysis
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "realScores.csv" in ln]
    assert len(lines) == 1 and "line 60 is incomplete (no line end): the file is truncated" in lines[0]
    assert "left out of the analysis" in lines[0]


def test_malformed_number_is_left_out_with_one_line(tmp_path, capsys):
    run = shutil.copytree(HISTORY_RUN, tmp_path / "run")
    (run / "realswitch_epochs.csv").write_text("Switch Number,Switch Epoch\n0,thirteen\n")
    assert main(["analyze", str(run), "--out", str(tmp_path / "o")]) == 0
    assert "realswitch_epochs.csv: line 2: 'thirteen' is not a number" in capsys.readouterr().out
    assert read_history(run).switch_epochs == []


def test_two_save_names(tmp_path, capsys):
    both = tmp_path / "both"
    shutil.copytree(HISTORY_RUN, both)
    shutil.copytree(CAPACITY_RUN, both, dirs_exist_ok=True)
    assert "several runs in one folder (save names: real, tc); pick one with --save-name" in _bad(tmp_path, capsys, both)
    assert main(["analyze", str(both), "--save-name", "tc", "--out", str(tmp_path / "o2")]) == 0
    assert read_history(both, save_name="real").dendrites == 1
    with pytest.raises(AnalysisError, match="no run named 'x'"):
        read_history(both, save_name="x")


def test_header_only_run_reports_what_is_missing(tmp_path, capsys):
    run = tmp_path / "fresh"
    run.mkdir()
    for name in sorted(p.name for p in HISTORY_RUN.iterdir() if "noImprove" not in p.name and "beforeSwitch" not in p.name):
        header = (HISTORY_RUN / name).read_text().splitlines()[0]
        (run / name).write_text(header + "\n")
    assert main(["analyze", str(run), "--out", str(tmp_path / "o")]) == 0
    text = capsys.readouterr().out
    assert "realScores.csv has only a header" in text and "real_best_arch_scores.csv has only a header" in text
    assert "No rule fired." in text
    doc = json.loads((tmp_path / "o" / "findings.json").read_text())
    assert doc["choice"]["dendrites"] == 0 and doc["choice"]["val"] is None and doc["findings"] == []


def test_run_without_dendrites_is_a_finding_not_an_error(build, tmp_path, capsys):
    folder = build([[60.0, 70.0, 75.0, 77.0, 78.0]])
    assert main(["analyze", str(folder), "--out", str(tmp_path / "o")]) == 0
    assert "dendrites.never_added" in capsys.readouterr().out


def test_unwritable_output_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the output folder should go")
    err = _bad(tmp_path, capsys, HISTORY_RUN, "--out", str(blocker / "sub"))
    assert "cannot write the analysis there" in err
