"""A tiny trained run of the bundled demo and its export, shared by the deploy tests."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from mimictools.cli.app import app

pytest.importorskip("onnx", reason="the export extra is not installed: pip install -e '.[export]'")
pytest.importorskip("onnxruntime", reason="the export extra is not installed: pip install -e '.[export]'")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The bundled demo (our humanoid, squat clip, CPU MuJoCo) trained for 256 samples."""
    run_dir = tmp_path_factory.mktemp("deploy_run") / "tiny"
    res = CliRunner().invoke(
        app,
        [
            "train", "--max-samples", "256", "--num-envs", "4", "--out-dir", str(run_dir), "--no-progress",
            "--threads", "1", "--set", "test_episodes=4",
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    return run_dir


@pytest.fixture(scope="session")
def tiny_export(tiny_run, tmp_path_factory):
    from mimictools.deploy.export import export_policy

    out = tmp_path_factory.mktemp("deploy_export") / "policy.onnx"
    return export_policy(tiny_run / "latest.pt", out)
