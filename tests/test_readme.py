"""The README stays true: CI runs exactly its test command, and its tour's examples run and print what it shows."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _setup_commands() -> list:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", section, flags=re.S)]


def test_readme_has_exactly_two_setup_commands():
    cmds = _setup_commands()
    assert len(cmds) == 2, cmds
    assert all("\n" not in c for c in cmds), "each set-up command is one line"
    assert cmds[0].endswith("mimic train"), cmds[0]
    assert "pytest" in cmds[1], cmds[1]


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    test_cmd = _setup_commands()[1]
    ci_lines = [ln.strip() for ln in ci.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    assert test_cmd in ci_lines, f".ci/run must run the README's test command verbatim: {test_cmd!r}"


# ---- the tour: every `$ mimic ...` example runs, and the lines the README prints are the program's ----------------

_NUM = re.compile(r"\d[\d,]*(\.\d+)?(e[+-]?\d+)?")
_VOLATILE = re.compile(r"\d ?s\b|/s\b|frames/s|samples")  # times and rates: compared with the numbers masked
# round-off (fk-check's errors against MuJoCo, ~1e-13): its last digit moves with the installed libraries (the
# README's 1.38e-13 printed 1.37e-13 in a fresh venv of 2026-12-08), so any value below 1e-9 reads "~0" on both
# sides; an error of 1e-9 or more is still compared digit for digit
_ROUNDOFF = re.compile(r"\b\d\.\d+e-(?:\d{3,}|[1-9]\d)\b")


def _roundoff(line: str) -> str:
    return _ROUNDOFF.sub("~0", line)


def _tour_examples() -> list:
    """[(command line, [printed lines])] of the README's ```text blocks (``...`` lines elide output)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    out = []
    for block in re.findall(r"```text\n(.*?)```", text, flags=re.S):
        for chunk in re.split(r"^(?=\$ mimic )", block, flags=re.M):
            lines = chunk.rstrip("\n").splitlines()
            if lines and lines[0].startswith("$ mimic "):
                out.append((lines[0][2:], [ln for ln in lines[1:] if ln.strip() and ln.strip() != "..."]))
    return out


def _mask(line: str) -> str:
    return " ".join(_NUM.sub("#", line).split())


def test_readme_tour_lists_its_examples():
    cmds = [c for c, _ in _tour_examples()]
    for start in (
        "mimic motion inspect",
        "mimic fk-check",
        "mimic motion convert",
        "mimic motion retarget",
        "mimic train",
    ):
        assert any(c.startswith(start) for c in cmds), start


@pytest.mark.slow
def test_readme_tour_examples_run_and_print_what_the_readme_shows(shared_dir, tmp_path, monkeypatch):
    """Each example is run (``../shared`` -> the shared data; ``mimic train`` for 2 iterations instead of 10 minutes,
    ``mimic view`` not: it serves until stopped, tests/view covers it). Every printed line must appear in the
    output: exactly, or with numbers masked where it holds a time or a rate."""
    from typer.testing import CliRunner

    from mimictools.cli.app import app

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    run_dir = None
    for cmd, expected in _tour_examples():
        args = shlex.split(cmd)[1:]
        args = [a.replace("../shared", str(shared_dir)) for a in args]
        if args[0] == "view":
            continue
        if args[0] == "train":
            args = ["train", "--max-samples", "2048", "--no-progress", "--out-dir", "runs/demo_squat-readme"]
            run_dir = "runs/demo_squat-readme"
        if run_dir is not None:
            args = [a.replace("runs/demo_squat-...", run_dir) for a in args]
        res = runner.invoke(app, args, env={"COLUMNS": "100"})
        assert res.exit_code == 0, f"{cmd}\n{res.output}"
        got = [
            _roundoff(" ".join(ln.replace(str(shared_dir), "../shared").split()))
            for ln in res.output.splitlines()
        ]
        got_masked = [_mask(ln) for ln in got]
        for line in expected:
            if run_dir is not None:
                line = line.replace("runs/demo_squat-...", run_dir)
            line = _roundoff(" ".join(line.split()))  # compared as the program's lines are
            if args[0] == "train" or _VOLATILE.search(line):
                assert _mask(line) in got_masked, (
                    f"{cmd}: the README prints\n  {line}\nbut the program\n{res.output}"
                )
            else:
                assert line in got, f"{cmd}: the README prints\n  {line}\nbut the program\n{res.output}"
