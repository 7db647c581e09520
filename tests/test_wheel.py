"""A built wheel trains on its own: it carries the bundled data/ (humanoid, demo clips, configs).

Builds the wheel (`pip wheel .`), installs it into a fresh venv, then runs ``mimic train --max-samples 2048`` from
a folder outside the repository. The venv gets the project's dependencies from the running interpreter (a
``.pth`` line pointing at its site-packages, added after the wheel is installed) so that the test downloads
nothing (torch, mujoco: GBs); what it checks is the package itself: imported from the venv, not the checkout.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _run(cmd, cwd: Path, env=None, timeout: float = 600) -> subprocess.CompletedProcess:
    r = subprocess.run(
        [str(c) for c in cmd], cwd=str(cwd), env=env, capture_output=True, text=True, timeout=timeout
    )
    assert r.returncode == 0, (
        f"{' '.join(map(str, cmd))} -> {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    )
    return r


def _build_wheel(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(out)]
    try:
        import setuptools  # noqa: F401  (build with the installed setuptools: no download)

        cmd.append("--no-build-isolation")
    except ImportError:  # pragma: no cover - a venv without setuptools: pip fetches it
        pass
    _run(cmd, cwd=out)
    wheels = list(out.glob("mimictools-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_built_wheel_installs_into_a_fresh_venv_and_trains_from_another_folder(tmp_path: Path):
    wheel = _build_wheel(tmp_path / "dist")
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    for f in ("humanoid.xml", "configs/demo_env.yaml", "configs/demo_agent.yaml", "motions/demo_squat.pkl"):
        assert f"mimictools/_bundled/data/{f}" in names, f"the wheel lacks data/{f}"

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    py = env_dir / "bin" / "python"
    # no PYTHONPATH: the checkout must not be visible to the venv (nor its mimictools.egg-info to pip)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    _run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], cwd=tmp_path, env=env)
    # dependencies from this interpreter (after the install, so that pip never sees the checkout's mimictools)
    site = Path(
        _run(
            [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp_path
        ).stdout.strip()
    )
    (site / "_mimic_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    work = tmp_path / "elsewhere"
    work.mkdir()
    where = _run(
        [
            py,
            "-c",
            "import mimictools, mimictools.paths as p; print(mimictools.__file__); print(p.bundled_data_dir())",
        ],
        cwd=work,
        env=env,
    )
    pkg_file, data_dir = where.stdout.split()
    assert env_dir in Path(pkg_file).parents, f"mimictools imported from {pkg_file}, not the venv"
    assert env_dir in Path(data_dir).parents, data_dir

    r = _run(
        [env_dir / "bin" / "mimic", "train", "--max-samples", "2048", "--out-dir", "run", "--no-progress"],
        cwd=work,
        env=env,
    )
    assert "done (max_samples)" in r.stdout, r.stdout
    for f in ("best.pt", "latest.pt", "log.txt", "config.yaml", "run.json"):
        assert (work / "run" / f).is_file(), f"no {f} in the run folder"
