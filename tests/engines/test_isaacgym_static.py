"""What can be checked of the Isaac Gym engine without Isaac Gym (see docs/isaacgym.md for what was not run).

- the module imports without isaacgym, and building the engine raises a clear EngineError naming the install doc;
- ``mypy`` passes on ``mimictools/engines/isaacgym.py`` against the ``isaacgym-stubs`` package;
- the module parses as Python 3.8;
- the pure conversions (name maps, quaternion order, DoF order and coordinates, DoF properties) are right;
- the CLI preload helper recognises ``--engine isaacgym``.

Type check by hand (what ``test_mypy_against_isaacgym_stubs`` runs, in the slow suite: ``pytest -m slow``)::

    python tests/engines/test_isaacgym_static.py        # prints mypy's output, exits with its code

The published isaacgym-stubs 1.1rc4 cannot be used as installed: its package has ``__init__.py`` instead of
``__init__.pyi`` (mypy does not see it), two properties are named ``lambda`` (a syntax error), and it has no
``gymtorch``. ``build_stub_dir`` copies it into a temporary folder with those three things fixed (the
``gymtorch.pyi`` written here declares the two functions we call, as Isaac Gym's gymtorch.py defines them),
and mypy runs with that folder on ``MYPYPATH`` and errors inside the stubs themselves silenced.
"""

from __future__ import annotations

import ast
import importlib.util
import math
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

from mimictools.engines.base import set_state

REPO = Path(__file__).resolve().parents[2]
MODULE = REPO / "mimictools" / "engines" / "isaacgym.py"

GYMTORCH_PYI = """\
from typing import Optional, Sequence

import torch

from . import gymapi

def wrap_tensor(
    gym_tensor: gymapi.Tensor, offsets: Optional[Sequence[int]] = ..., counts: Optional[Sequence[int]] = ...
) -> torch.Tensor: ...
def unwrap_tensor(torch_tensor: torch.Tensor) -> gymapi.Tensor: ...
"""

MYPY_INI = """\
[mypy]
follow_imports = silent
warn_unused_ignores = True
check_untyped_defs = True
disallow_untyped_defs = True

[mypy-isaacgym.*]
ignore_errors = True
"""


def installed_stubs() -> Path | None:
    """The ``isaacgym-stubs`` folder in site-packages, or None."""
    try:
        from importlib.metadata import PackageNotFoundError, distribution
    except ImportError:  # pragma: no cover - Python 3.7
        return None
    try:
        dist = distribution("isaacgym-stubs")
    except PackageNotFoundError:
        return None
    for f in dist.files or ():
        if f.name == "gymapi.pyi":
            return Path(str(f.locate())).parent
    return None


def build_stub_dir(dest: Path) -> Path:
    """Write a usable ``isaacgym`` stub package under ``dest`` (see the module docstring); return ``dest``."""
    src = installed_stubs()
    if src is None:
        raise FileNotFoundError("isaacgym-stubs is not installed (pip install isaacgym-stubs)")
    pkg = dest / "isaacgym"
    pkg.mkdir(parents=True, exist_ok=True)
    text = (src / "gymapi.pyi").read_text(encoding="utf-8")
    text = re.sub(r"\bdef lambda\(", "def lambda_(", text)
    (pkg / "gymapi.pyi").write_text(text, encoding="utf-8")
    (pkg / "__init__.pyi").write_text("from . import gymapi as gymapi\nfrom . import gymtorch as gymtorch\n")
    (pkg / "gymtorch.pyi").write_text(GYMTORCH_PYI)
    return dest


def run_mypy(*targets: Path) -> subprocess.CompletedProcess:
    """mypy on ``targets`` (default: the Isaac Gym engine module) against the fixed isaacgym stubs."""
    with tempfile.TemporaryDirectory(prefix="mimic-isaacgym-stubs-") as tmp:
        stubs = build_stub_dir(Path(tmp) / "stubs")
        ini = Path(tmp) / "mypy.ini"
        ini.write_text(MYPY_INI)
        env = dict(os.environ, MYPYPATH=str(stubs))
        return subprocess.run(
            [sys.executable, "-m", "mypy", "--config-file", str(ini), "--no-incremental"]
            + [str(t) for t in (targets or (MODULE,))],
            cwd=str(REPO),
            env=env,
            capture_output=True,
            text=True,
        )


# ---- static checks ----------------------------------------------------------------------------------------
BAD_GYM_USE = (
    "from isaacgym import gymapi, gymtorch\n"
    "def f() -> None:\n"
    "    opts = gymapi.AssetOptions()\n"
    "    opts.fix_base_link = 'yes'\n"
    "    t = gymtorch.wrap_tensor(3)\n"
)
"""A misuse of the Isaac Gym API that the stubs must catch (two errors)."""


@pytest.fixture(scope="module")
def mypy_run(tmp_path_factory):
    """One mypy run (mypy reads torch's stubs for ~30 s: one run, not one per test) over the engine module and
    ``BAD_GYM_USE``; returns (process, path of the bad file). Files are checked independently: errors in one
    do not hide the other's."""
    if installed_stubs() is None:
        pytest.skip("isaacgym-stubs not installed (pip install isaacgym-stubs)")
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy not installed")
    bad = tmp_path_factory.mktemp("mypy") / "bad_gym_use.py"
    bad.write_text(BAD_GYM_USE)
    return run_mypy(MODULE, bad), bad


def _mypy_lines(proc: subprocess.CompletedProcess, path: Path):
    """mypy's error/note lines about ``path`` (mypy prints paths relative to its cwd, the repo, where it can)."""
    names = {str(path), os.path.relpath(path, REPO)}
    return [ln for ln in proc.stdout.splitlines() if ln.split(":", 1)[0] in names]


@pytest.mark.slow  # mypy reads torch's stubs: ~30 CPU-s (the fake-gym tests below run by default)
def test_mypy_against_isaacgym_stubs(mypy_run):
    proc, bad = mypy_run
    out = proc.stdout + proc.stderr
    assert _mypy_lines(proc, MODULE) == [], out  # the engine module: not one error or note
    # the only errors are the planted ones, and mypy checked both files (not a crash, not a skipped module)
    assert len(_mypy_lines(proc, bad)) == 2, out
    assert "Found 2 errors in 1 file (checked 2 source files)" in proc.stdout, out


@pytest.mark.slow
def test_mypy_run_can_fail(mypy_run):
    """The harness is not vacuous: a misuse of the Isaac Gym API is caught through the stubs."""
    proc, bad = mypy_run
    assert proc.returncode == 1, proc.stdout + proc.stderr
    errors = "\n".join(_mypy_lines(proc, bad))
    assert 'expression has type "str", variable has type "bool"' in errors, proc.stdout
    assert 'Argument 1 to "wrap_tensor" has incompatible type "int"' in errors, proc.stdout


def test_module_parses_as_python38():
    ast.parse(MODULE.read_text(encoding="utf-8"), filename=str(MODULE), feature_version=(3, 8))
    preload = MODULE.with_name("isaacgym_preload.py")
    ast.parse(preload.read_text(encoding="utf-8"), filename=str(preload), feature_version=(3, 8))


@pytest.mark.skipif(importlib.util.find_spec("isaacgym") is not None, reason="isaacgym is installed here")
def test_without_isaacgym_the_engine_raises_a_clear_error(humanoid):
    from mimictools.engines.base import EngineSpec
    from mimictools.engines.isaacgym import IsaacGymEngine
    from mimictools.engines.registry import engine_class, make_engine
    from mimictools.errors import EngineError

    assert engine_class("isaacgym") is IsaacGymEngine  # the module itself imports without isaacgym
    with pytest.raises(
        EngineError, match=r"isaacgym is not importable.*docs/isaacgym\.md.*mimic doctor --engine isaacgym"
    ):
        make_engine("isaacgym", humanoid, EngineSpec(num_envs=2, device="cpu"))


def test_bad_arguments_are_rejected_before_isaacgym_is_needed(humanoid):
    from mimictools.engines.base import EngineSpec
    from mimictools.engines.isaacgym import IsaacGymEngine
    from mimictools.errors import EngineError, NotSupportedError

    with pytest.raises(EngineError, match="spherical_coords"):
        IsaacGymEngine(humanoid, EngineSpec(num_envs=1), spherical_coords="euler")
    with pytest.raises(NotSupportedError, match="only 'pos'"):
        IsaacGymEngine(humanoid, EngineSpec(num_envs=1, control_mode="torque"))
    with pytest.raises(EngineError, match="multiple of control_freq"):
        IsaacGymEngine(humanoid, EngineSpec(num_envs=1, control_freq=30.0, sim_freq=100.0))


def test_preload_recognises_the_engine_option():
    from mimictools.engines.isaacgym_preload import isaacgym_requested, preload_isaacgym_if_requested

    assert isaacgym_requested(["mimic", "train", "--engine", "isaacgym", "--num-envs", "8"])
    assert isaacgym_requested(["mimic", "fk-check", "--engine=isaacgym"])
    assert not isaacgym_requested(["mimic", "train", "--engine", "mujoco"])
    assert not isaacgym_requested(["mimic", "train", "--engine"])
    assert not preload_isaacgym_if_requested(["mimic", "train"])


# ---- pure conversions -------------------------------------------------------------------------------------
def test_index_map():
    from mimictools.engines.isaacgym import index_map
    from mimictools.errors import EngineError

    assert index_map(["a", "b", "c"], ["c", "a"], "body") == [2, 0]
    with pytest.raises(EngineError, match="no rigid body named 'x'.*names are: a, b"):
        index_map(["a", "b"], ["a", "x"], "rigid body")


def test_root_state_quaternion_order():
    from mimictools.engines.isaacgym import root_state_from_gym, root_state_to_gym

    g = torch.Generator().manual_seed(0)
    pos, vel, ang = (torch.randn(5, 3, generator=g) for _ in range(3))
    rot = torch.nn.functional.normalize(torch.randn(5, 4, generator=g), dim=-1)  # wxyz
    raw = root_state_to_gym(pos, rot, vel, ang)
    assert raw.shape == (5, 13)
    assert torch.equal(raw[:, 3:6], rot[:, 1:4]) and torch.equal(raw[:, 6], rot[:, 0])  # xyzw on the Gym side
    back = root_state_from_gym(raw)
    for x, y in zip(back, (pos, rot, vel, ang)):
        assert torch.equal(x, y)


def step(eng, dof_targets):
    """One control step: ``set_targets`` then ``step_physics``."""
    eng.set_targets(dof_targets)
    eng.step_physics()


def random_state(char, n, seed):
    """Random poses inside the joint limits (spherical exp maps of angle < 1.3 rad), random velocities; float64."""
    from mimictools.engines.base import SimState
    from mimictools.math.rotations import exp_map_to_quat

    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.rand(*shape, generator=g, dtype=torch.float64)

    dof = torch.zeros(n, char.num_dofs, dtype=torch.float64)
    for j in char.joints:
        if j.kind == "hinge":
            lo, hi = max(float(j.range_low[0]), -2.5), min(float(j.range_high[0]), 2.5)
            dof[:, j.dof_offset] = lo + (hi - lo) * r(n)
        else:
            axis = torch.nn.functional.normalize(r(n, 3) - 0.5, dim=-1)
            dof[:, j.dof_offset : j.dof_offset + 3] = axis * (0.05 + 1.2 * r(n, 1))
    root_rot = exp_map_to_quat(torch.nn.functional.normalize(r(n, 3) - 0.5, dim=-1) * (3.0 * r(n, 1)))
    return SimState(r(n, 3), root_rot, r(n, 3) - 0.5, r(n, 3) - 0.5, dof, 2.0 * r(n, char.num_dofs) - 1.0)


def _shuffled_gym_names(humanoid, seed=0):
    names = list(humanoid.dof_names)
    perm = torch.randperm(len(names), generator=torch.Generator().manual_seed(seed)).tolist()
    return [names[i] for i in perm]


def test_dof_converter_exp_map_is_a_reordering(humanoid):
    from mimictools.engines.isaacgym import DofConverter

    gym_names = _shuffled_gym_names(humanoid)
    conv = DofConverter(humanoid, gym_names, "exp_map")
    s = random_state(humanoid, 7, seed=3)
    pos_g, vel_g = conv.to_gym(s.root_pos, s.root_rot, s.dof_pos, s.root_vel, s.root_ang_vel, s.dof_vel)
    names = list(humanoid.dof_names)
    for k, name in enumerate(gym_names):  # Isaac Gym's column k carries the character's DoF of that name
        c = names.index(name)
        assert torch.equal(pos_g[:, k], s.dof_pos[:, c]) and torch.equal(vel_g[:, k], s.dof_vel[:, c])
    pos, vel = conv.from_gym(s.root_pos, s.root_rot, pos_g, vel_g)
    assert torch.equal(pos, s.dof_pos) and torch.equal(vel, s.dof_vel)
    assert torch.equal(conv.targets_to_gym(s.dof_pos), pos_g)


def test_dof_converter_hinge_mode_matches_mujoco_qpos(humanoid):
    """hinge mode = the MuJoCo engine's semantics: Gym coordinates are the qpos hinge angles, round trip exact."""
    from mimictools.character import kinematics
    from mimictools.engines.isaacgym import DofConverter

    gym_names = _shuffled_gym_names(humanoid, seed=1)
    conv = DofConverter(humanoid, gym_names, "hinge")
    s = random_state(humanoid, 9, seed=4)
    pos_g, vel_g = conv.to_gym(s.root_pos, s.root_rot, s.dof_pos, s.root_vel, s.root_ang_vel, s.dof_vel)
    qpos = kinematics.dof_to_qpos(humanoid, s.root_pos, s.root_rot, s.dof_pos)
    names = list(humanoid.dof_names)
    for k, name in enumerate(gym_names):
        assert torch.allclose(pos_g[:, k], qpos[:, 7 + names.index(name)], atol=0.0)
    pos, vel = conv.from_gym(s.root_pos, s.root_rot, pos_g, vel_g)
    torch.testing.assert_close(pos, s.dof_pos, rtol=0.0, atol=1e-9)
    torch.testing.assert_close(vel, s.dof_vel, rtol=0.0, atol=1e-8)
    # targets: the same angles as a state with that pose
    torch.testing.assert_close(conv.targets_to_gym(s.dof_pos), pos_g, rtol=0.0, atol=1e-12)
    # hinge angles differ from exp-map components away from zero: the two modes are really different
    assert (pos_g - DofConverter(humanoid, gym_names, "exp_map").targets_to_gym(s.dof_pos)).abs().max() > 1e-2


def test_dof_converter_rejects_a_wrong_dof_count(humanoid):
    from mimictools.engines.isaacgym import DofConverter
    from mimictools.errors import EngineError

    with pytest.raises(EngineError, match="Isaac Gym made 27 DoFs"):
        DofConverter(humanoid, list(humanoid.dof_names)[:-1])


def test_dof_converter_positional_fallback_warns(humanoid):
    from mimictools.engines.isaacgym import DofConverter

    renamed = [f"dof{i}" for i in range(humanoid.num_dofs)]
    with pytest.warns(UserWarning, match="assuming the same order"):
        conv = DofConverter(humanoid, renamed)
    assert conv.gym_from_char.tolist() == list(range(humanoid.num_dofs))


def test_dof_properties_follow_the_mjcf(humanoid):
    from mimictools.engines.isaacgym import dof_properties

    gym_names = _shuffled_gym_names(humanoid, seed=2)
    props = dof_properties(humanoid, gym_names)
    k = gym_names.index("right_knee")
    # humanoid.xml: right_knee stiffness=500 damping=50 armature=.02 range="0 2.7925" actuatorfrcrange="-150 150"
    assert props["stiffness"][k] == 500 and props["damping"][k] == 50 and props["effort"][k] == 150
    assert math.isclose(props["armature"][k], 0.02, rel_tol=1e-6)
    assert (
        props["hasLimits"][k]
        and props["lower"][k] == 0
        and math.isclose(props["upper"][k], 2.7925, rel_tol=1e-6)
    )
    k = gym_names.index("neck_y")  # neck: stiffness=100 damping=10, range -0.6981 1.0472
    assert props["stiffness"][k] == 100 and props["damping"][k] == 10 and props["effort"][k] == 50
    assert math.isclose(props["lower"][k], -0.6981, rel_tol=1e-6)
    assert all(len(v) == humanoid.num_dofs for v in props.values())


# ---- physics-backed poses agree with our FK of the engine's own state (every engine in conftest.ENGINES) ----
def test_body_poses_after_a_step_match_fk_of_the_reported_state(engine_factory, humanoid):
    """After a physics step, the body poses the engine reports (Isaac Gym: PhysX's rigid-body states) must be
    FK of the DoF state it reports. On Isaac Gym this is the test that decides ``spherical_coords``: with the
    wrong convention the three-hinge bodies are off by tenths of a radian here. (Right after ``set_state`` the
    Isaac Gym engine reports our own FK, so the contract suite's set_state checks cannot decide it.)"""
    from mimictools.character import kinematics
    from mimictools.math.rotations import quat_diff_angle

    n = 4
    eng = engine_factory(humanoid, n)
    s0 = random_state(humanoid, n, seed=7)
    s0.root_pos[:, 2] = 2.0  # in the air: no ground contact
    s0.root_vel.zero_()
    s0.root_ang_vel.zero_()
    s0.dof_vel.zero_()
    set_state(eng, None, s0)
    step(eng, s0.dof_pos.float().to(eng.device))
    s = eng.get_state()
    local_rot = kinematics.dof_to_local_rot(humanoid, s.dof_pos.double().cpu())
    ref_pos, ref_rot = kinematics.forward_kinematics(
        humanoid, s.root_pos.double().cpu(), s.root_rot.double().cpu(), local_rot
    )
    pos_err_m = (eng.body_pos().double().cpu() - ref_pos).abs().max().item()
    rot_err_rad = quat_diff_angle(eng.body_rot().double().cpu(), ref_rot).abs().max().item()
    # float32 state and poses of ~2 m coordinates: ~1e-6 rounding, amplified a little along the chains
    assert pos_err_m < 1e-4, pos_err_m
    assert rot_err_rad < 1e-4, rot_err_rad


@pytest.fixture(scope="module")
def humanoid(shared_dir):
    from mimictools.character.mjcf import load_character

    return load_character(shared_dir / "mimickit" / "data" / "assets" / "humanoid" / "humanoid.xml")


if __name__ == "__main__":
    result = run_mypy()
    sys.stdout.write(result.stdout + result.stderr)
    sys.exit(result.returncode)


# ---- the adapter's plumbing against a fake isaacgym package --------------------------------------------
# A stand-in for Isaac Gym's Python API, written here, NOT a model of PhysX: `simulate()` snaps every DoF to
# its position target and recomputes rigid-body states by our FK with the exp-map convention. Isaac Gym's
# layouts are imitated: xyzw quaternions, global positions including a grid offset per env, rigid bodies and
# DoFs in an order different from the Character's, wrapped tensors that change only on refresh_*, and only
# the last indexed setter call before simulate() taking effect. This exercises every line of the adapter
# that talks to gymapi; it proves nothing about PhysX itself.
FAKE_GYMAPI = """
import os
import numpy as np
import torch
from mimictools.character import kinematics
from mimictools.character.mjcf import load_character
from mimictools.math.rotations import wxyz_to_xyzw, xyzw_to_wxyz

DOF_MODE_NONE, DOF_MODE_POS = 0, 1
DOMAIN_SIM = 2
SIM_PHYSX = 0
UP_AXIS_Z = 1
DOF_DTYPE = np.dtype([("hasLimits", "?"), ("lower", "f4"), ("upper", "f4"), ("driveMode", "i4"),
                      ("velocity", "f4"), ("effort", "f4"), ("stiffness", "f4"), ("damping", "f4"),
                      ("friction", "f4"), ("armature", "f4")])
calls = []


class Vec3:
    def __init__(self, x=0.0, y=0.0, z=0.0):
        self.x, self.y, self.z = x, y, z


class Quat:
    def __init__(self, x=0.0, y=0.0, z=0.0, w=1.0):
        self.x, self.y, self.z, self.w = x, y, z, w


class Transform:
    def __init__(self):
        self.p, self.r = Vec3(), Quat()


class _Bag:
    pass


class SimParams:
    def __init__(self):
        self.physx = _Bag()
        self.gravity = Vec3()


class AssetOptions:
    pass


class PlaneParams:
    pass


class Tensor:
    pass


class _Asset:
    def __init__(self, path):
        self.char = load_character(path)
        self.body_names = list(reversed(self.char.body_names))  # not the Character's order
        self.dof_names = list(reversed(self.char.dof_names))


class _Sim:
    def __init__(self, params):
        self.params, self.envs, self.pending = params, [], {}


class _Env:
    def __init__(self, index, origin):
        self.index, self.origin, self.props, self.start = index, origin, None, None


class Gym:
    def create_sim(self, compute, graphics, kind, params):
        calls.append(("create_sim", params.use_gpu_pipeline))
        return _Sim(params)

    def add_ground(self, sim, plane):
        calls.append("add_ground")

    def load_asset(self, sim, root, name, options):
        sim.asset = _Asset(os.path.join(root, name))
        return sim.asset

    def get_asset_rigid_body_names(self, asset):
        return list(asset.body_names)

    def get_asset_dof_names(self, asset):
        return list(asset.dof_names)

    def create_env(self, sim, lower, upper, per_row):
        i = len(sim.envs)
        w = upper.x - lower.x
        env = _Env(i, [w * (i % per_row), w * (i // per_row), 0.0])
        sim.envs.append(env)
        return env

    def create_actor(self, env, asset, pose, name, group, filt, seg):
        env.start = pose
        return 0

    def get_actor_dof_properties(self, env, actor):
        return np.zeros(self._nd, DOF_DTYPE)

    def set_actor_dof_properties(self, env, actor, props):
        env.props = props.copy()
        return True

    def get_actor_index(self, env, actor, domain):
        return env.index

    def prepare_sim(self, sim):
        a, n = sim.asset, len(sim.envs)
        sim.nb, sim.nd = len(a.body_names), len(a.dof_names)
        sim.body_perm = torch.tensor([a.char.body_names.index(b) for b in a.body_names])
        sim.dof_perm = torch.tensor([a.char.dof_names.index(d) for d in a.dof_names])
        root = torch.zeros(n, 13)
        for e in sim.envs:
            root[e.index, 0:3] = torch.tensor(e.origin) + torch.tensor([e.start.p.x, e.start.p.y, e.start.p.z])
            root[e.index, 6] = 1.0
        sim.origin = torch.tensor([e.origin for e in sim.envs])
        sim.state = {"root": root, "dof": torch.zeros(n * sim.nd, 2)}
        sim.targets = torch.zeros(n * sim.nd)
        sim.out = {"root": root.clone(), "dof": torch.zeros(n * sim.nd, 2), "body": torch.zeros(n * sim.nb, 13),
                   "contact": torch.zeros(n * sim.nb, 3)}
        sim.simulated = 0
        self._bodies(sim)
        return True

    def _bodies(self, sim):
        n, char = len(sim.envs), sim.asset.char
        root = sim.state["root"]
        dof_gym = sim.state["dof"].view(n, sim.nd, 2)[..., 0]
        dof = torch.zeros(n, sim.nd)
        dof[:, sim.dof_perm] = dof_gym  # exp-map convention: Isaac Gym coordinates = motion DoFs
        pos, rot = kinematics.forward_kinematics(
            char, root[:, 0:3], xyzw_to_wxyz(root[:, 3:7]), kinematics.dof_to_local_rot(char, dof))
        body = torch.zeros(n, sim.nb, 13)
        body[..., 0:3] = pos[:, sim.body_perm]
        body[..., 3:7] = wxyz_to_xyzw(rot[:, sim.body_perm])
        sim.body = body.view(n * sim.nb, 13)

    def acquire_actor_root_state_tensor(self, sim):
        return sim.out["root"]

    def acquire_dof_state_tensor(self, sim):
        return sim.out["dof"]

    def acquire_rigid_body_state_tensor(self, sim):
        return sim.out["body"]

    def acquire_net_contact_force_tensor(self, sim):
        return sim.out["contact"]

    def set_actor_root_state_tensor_indexed(self, sim, t, ids, k):
        sim.pending["root"] = (t.clone(), ids.long().clone())  # only the last call before simulate() counts
        return True

    def set_dof_state_tensor_indexed(self, sim, t, ids, k):
        sim.pending["dof"] = (t.clone(), ids.long().clone())
        return True

    def set_dof_position_target_tensor(self, sim, t):
        sim.targets = t.clone().reshape(-1)
        return True

    def simulate(self, sim):
        n = len(sim.envs)
        if "root" in sim.pending:
            t, ids = sim.pending.pop("root")
            sim.state["root"][ids] = t[ids]
        if "dof" in sim.pending:
            t, ids = sim.pending.pop("dof")
            s, src = sim.state["dof"].view(n, sim.nd, 2), t.view(n, sim.nd, 2)
            s[ids] = src[ids]
        dof = sim.state["dof"].view(n, sim.nd, 2)
        dof[..., 0] = sim.targets.view(n, sim.nd)
        dof[..., 1] = 0.0
        self._bodies(sim)
        sim.simulated += 1

    def fetch_results(self, sim, wait):
        pass

    def refresh_actor_root_state_tensor(self, sim):
        sim.out["root"].copy_(sim.state["root"])
        return True

    def refresh_dof_state_tensor(self, sim):
        sim.out["dof"].copy_(sim.state["dof"])
        return True

    def refresh_rigid_body_state_tensor(self, sim):
        sim.out["body"].copy_(sim.body)
        return True

    def refresh_net_contact_force_tensor(self, sim):
        return True

    def destroy_sim(self, sim):
        calls.append("destroy_sim")


def acquire_gym():
    return _GYM


_GYM = Gym()
"""

FAKE_GYMTORCH = """
def wrap_tensor(gym_tensor, offsets=None, counts=None):
    return gym_tensor


def unwrap_tensor(torch_tensor):
    return torch_tensor
"""


@pytest.fixture
def fake_isaacgym(tmp_path, monkeypatch, humanoid):
    """Install the fake isaacgym on sys.path for one test; its Gym knows the DoF count of ``humanoid``."""
    pkg = tmp_path / "fakegym" / "isaacgym"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "gymapi.py").write_text(FAKE_GYMAPI)
    (pkg / "gymtorch.py").write_text(FAKE_GYMTORCH)
    for name in [m for m in sys.modules if m == "isaacgym" or m.startswith("isaacgym.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(str(pkg.parent))
    import isaacgym.gymapi as gymapi

    gymapi._GYM._nd = humanoid.num_dofs
    yield gymapi
    for name in [m for m in sys.modules if m == "isaacgym" or m.startswith("isaacgym.")]:
        monkeypatch.delitem(sys.modules, name)


def _fake_engine(humanoid, n, **kw):
    from mimictools.engines.base import EngineSpec
    from mimictools.engines.isaacgym import IsaacGymEngine

    return IsaacGymEngine(
        humanoid, EngineSpec(num_envs=n, device="cpu", control_freq=30.0, sim_freq=120.0), **kw
    )


def test_plumbing_construct_and_env_origins(fake_isaacgym, humanoid):
    eng = _fake_engine(humanoid, 5)
    assert eng.substeps == 4 and math.isclose(eng.sim_dt, 1 / 120)
    s = eng.get_state()
    start = torch.as_tensor(humanoid.local_pos[0], dtype=torch.float32)
    # the fake puts envs on a 5 m grid; the engine must hide that offset
    assert torch.allclose(s.root_pos, start.expand(5, 3)), s.root_pos
    assert eng._env_origin[:, :2].abs().max() > 1.0
    assert torch.allclose(s.root_rot, torch.tensor([1.0, 0, 0, 0]).expand(5, 4))
    # PD properties landed at Isaac Gym's DoF index of each joint
    props = eng._envs[0].props
    k = list(reversed(humanoid.dof_names)).index("right_knee")
    assert props["stiffness"][k] == 500 and props["damping"][k] == 50 and props["effort"][k] == 150
    assert (props["driveMode"] == fake_isaacgym.DOF_MODE_POS).all()
    eng.close()
    assert "destroy_sim" in fake_isaacgym.calls
    from mimictools.errors import EngineError

    with pytest.raises(EngineError, match="closed"):
        eng.get_state()


@pytest.mark.parametrize("mode", ["exp_map", "hinge"])
def test_plumbing_set_get_round_trip(fake_isaacgym, humanoid, mode):
    eng = _fake_engine(humanoid, 4, spherical_coords=mode)
    state = random_state(humanoid, 4, seed=11)
    set_state(eng, torch.arange(4), state)
    got = eng.get_state()
    for name, x, y in zip(
        ("root_pos", "root_rot", "root_vel", "root_ang_vel", "dof_pos", "dof_vel"),
        got.fields(),
        state.fields(),
    ):
        assert x.dtype == torch.float32 and x.shape == y.shape, name
        torch.testing.assert_close(x.double(), y, rtol=0.0, atol=1e-5, msg=name)
    # right after set_state: our FK, and zero contacts
    from mimictools.character import kinematics

    ref_pos, _ = kinematics.forward_kinematics(
        humanoid, state.root_pos, state.root_rot, kinematics.dof_to_local_rot(humanoid, state.dof_pos)
    )
    torch.testing.assert_close(eng.body_pos().double(), ref_pos, rtol=0.0, atol=1e-5)
    assert eng.contact_forces().abs().max() == 0


def test_plumbing_step_body_poses_and_the_convention_check(fake_isaacgym, humanoid):
    """The fake's physics uses the exp-map convention: FK-after-step agrees in exp_map mode and is off by
    tenths of a radian in hinge mode, i.e. the real-Isaac-Gym test can tell the two apart."""
    from mimictools.character import kinematics
    from mimictools.math.rotations import quat_diff_angle

    errs = {}
    for mode in ("exp_map", "hinge"):
        eng = _fake_engine(humanoid, 3, spherical_coords=mode)
        s0 = random_state(humanoid, 3, seed=12)
        set_state(eng, None, s0)
        step(eng, s0.dof_pos.float())
        s = eng.get_state()
        ref_pos, ref_rot = kinematics.forward_kinematics(
            humanoid,
            s.root_pos.double(),
            s.root_rot.double(),
            kinematics.dof_to_local_rot(humanoid, s.dof_pos.double()),
        )
        errs[mode] = quat_diff_angle(eng.body_rot().double(), ref_rot).abs().max().item()
        assert (eng.body_pos().double() - ref_pos).abs().max().item() < (1e-4 if mode == "exp_map" else 10.0)
        eng.close()
    assert errs["exp_map"] < 1e-4, errs
    assert errs["hinge"] > 0.05, errs


def test_plumbing_resets_in_one_control_step_are_merged(fake_isaacgym, humanoid):
    """Two set_state calls before a step: both envs must be reset (the fake, like Isaac Gym's GPU pipeline,
    applies only the last indexed call before simulate)."""
    n = 4
    eng = _fake_engine(humanoid, n)
    a = random_state(humanoid, 1, seed=13)
    b = random_state(humanoid, 1, seed=14)
    set_state(eng, torch.tensor([1]), a)
    set_state(eng, torch.tensor([3]), b)
    targets = torch.zeros(n, humanoid.num_dofs)
    targets[1], targets[3] = a.dof_pos[0].float(), b.dof_pos[0].float()
    step(eng, targets)
    s = eng.get_state()
    torch.testing.assert_close(s.root_pos[1].double(), a.root_pos[0], rtol=0.0, atol=1e-5)
    torch.testing.assert_close(s.root_pos[3].double(), b.root_pos[0], rtol=0.0, atol=1e-5)
    start = torch.as_tensor(humanoid.local_pos[0], dtype=torch.float32)
    torch.testing.assert_close(s.root_pos[0], start, rtol=0.0, atol=1e-6)  # untouched env


def test_plumbing_rejects_bad_inputs(fake_isaacgym, humanoid):
    from mimictools.errors import EngineError

    eng = _fake_engine(humanoid, 2)
    with pytest.raises(EngineError, match="dof_targets has shape"):
        step(eng, torch.zeros(2, 3))
    with pytest.raises(EngineError, match="NaN or inf"):
        step(eng, torch.full((2, humanoid.num_dofs), float("nan")))
    bad = random_state(humanoid, 1, seed=15)
    with pytest.raises(EngineError, match="env_ids must lie in"):
        set_state(eng, torch.tensor([2]), bad)
