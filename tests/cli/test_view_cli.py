"""`mimic view` on the command line: HTML export, one-line errors, the missing-extra message."""

from __future__ import annotations

import builtins

import pytest
from typer.testing import CliRunner

from mimictools.cli.app import app

runner = CliRunner()


def test_export_writes_a_self_contained_html(shared_dir, tmp_path):
    pytest.importorskip("viser", reason="needs the optional viser package")
    out = tmp_path / "walk.html"
    clip = shared_dir / "mimickit/data/motions/humanoid/humanoid_walk.pkl"
    res = runner.invoke(app, ["view", str(clip), "--export", str(out)])
    assert res.exit_code == 0, res.output
    assert "nan: 125 of 125 frames" in res.output  # the fault summary is printed
    text = out.read_text()
    assert "__VISER_EMBED_DATA__" in text and len(text) > 100_000


def test_compare_export(shared_dir, tmp_path):
    pytest.importorskip("viser", reason="needs the optional viser package")
    out = tmp_path / "cmp.html"
    src = shared_dir / "deepmimic/motions/humanoid3d_kick.txt"
    res = runner.invoke(app, ["motion", "convert", str(src), "-o", str(tmp_path / "kick.pkl")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        app, ["view", str(tmp_path / "kick.pkl"), "--compare", str(src), "--export", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "source humanoid3d_kick.txt" in res.output and out.is_file()


def test_bad_input_is_one_line_exit_2(tmp_path):
    pytest.importorskip("viser", reason="needs the optional viser package")
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"not a pickle")
    res = runner.invoke(app, ["view", str(bad)])
    assert res.exit_code == 2 and "bad.pkl" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["view"])
    assert res.exit_code == 2 and "nothing to view" in res.output
    res = runner.invoke(app, ["view", str(bad), "--ghost-offset", "1,2"])
    assert res.exit_code == 2 and "--ghost-offset" in res.output


def test_missing_viser_names_the_extra(monkeypatch, tmp_path):
    real_import = builtins.__import__

    def no_viser(name, *args, **kwargs):
        if name == "viser" or name.startswith("viser."):
            raise ImportError("No module named 'viser'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_viser)
    res = runner.invoke(app, ["view", str(tmp_path / "x.pkl")])
    assert res.exit_code == 2 and 'pip install "mimictools[view]"' in res.output
