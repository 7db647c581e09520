"""A tiny trained run of the bundled demo and its export, shared by the deploy tests."""

from __future__ import annotations

import pytest

pytest.importorskip("onnx", reason="the export extra is not installed: pip install -e '.[export]'")
pytest.importorskip("onnxruntime", reason="the export extra is not installed: pip install -e '.[export]'")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, train_no_probe):
    """The bundled demo (our humanoid, squat clip, CPU MuJoCo) trained for 256 samples, with plain PD-target
    actions (the demo's reference-offset actions are not in the deployment contract yet: export refuses them) and
    MimicKit's action_std 0.05, the setting this parity was measured with. With the demo's 0.02 the 256-sample policy
    trains differently and its episode is more sensitive: runner vs eval Body_Pos_Err 8.63 vs 9.38 cm (8 %, same
    episode length), measured 2026-12-07 and not yet explained; see the session note."""
    run_dir = tmp_path_factory.mktemp("deploy_run") / "tiny"
    res = train_no_probe(
        "--max-samples", "256", "--num-envs", "4", "--out-dir", str(run_dir), "--threads", "1",
        "--set", "test_episodes=4", "--set", "env.action_ref_offset=false", "--set", "model.action_std=0.05",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    return run_dir


@pytest.fixture(scope="session")
def tiny_export(tiny_run, tmp_path_factory):
    from mimictools.deploy.export import export_policy

    out = tmp_path_factory.mktemp("deploy_export") / "policy.onnx"
    return export_policy(tiny_run / "latest.pt", out)
