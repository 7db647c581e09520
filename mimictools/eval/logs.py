"""Read training logs in MimicKit's text format (ours and MimicKit's own).

The format is a whitespace-padded table: a header line of column names (``Iteration Wall_Time
Samples Test_Return ...``) followed by one row of numbers per logged iteration. MimicKit's published
log separates lines with carriage returns only (``\\r``); ours uses ``\\n``; both are accepted.
``Wall_Time`` is in hours in both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Union

import numpy as np

from mimictools.errors import MimicToolsError

#: Unit of each of MimicKit's tracking-error log columns (torch-free, so plotting a log stays light).
TRACKING_ERROR_UNITS: Dict[str, str] = {
    "Root_Pos_Err": "m",
    "Root_Rot_Err": "rad",
    "Body_Pos_Err": "m",
    "Pose_Err": "rad",
    "Dof_Vel_Err": "rad/s",
    "Root_Vel_Err": "m/s",
    "Root_Ang_Vel_Err": "rad/s",
}


class LogFormatError(MimicToolsError):
    """A training log is not a MimicKit-style table."""


def read_log(path: Union[str, Path]) -> Dict[str, np.ndarray]:
    """Columns of a training log. Returns ``{column_name: float64 array (num_rows,)}``.

    Repeated header lines (a resumed run appending to the same log) are skipped.
    """
    from mimictools.io_util import read_input_bytes

    path = Path(path)
    text = read_input_bytes(path, LogFormatError).decode("utf-8", errors="replace")
    lines = [ln.split() for ln in text.replace("\r\n", "\n").replace("\r", "\n").split("\n") if ln.strip()]
    if not lines:
        raise LogFormatError(f"{path}: empty training log")
    header = lines[0]
    if "Iteration" not in header:
        raise LogFormatError(
            f"{path}: first line must be the column header starting with 'Iteration', got {' '.join(header[:4])!r}"
        )
    rows: List[List[float]] = []
    for lineno, parts in enumerate(lines[1:], start=2):
        if parts == header:
            continue
        if len(parts) != len(header):
            raise LogFormatError(
                f"{path}: line {lineno} has {len(parts)} values, the header has {len(header)} columns"
            )
        try:
            rows.append([float(p) for p in parts])
        except ValueError:
            raise LogFormatError(
                f"{path}: line {lineno} has a non-numeric value: {' '.join(parts)[:80]!r}"
            ) from None
    data = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(header))
    return {name: data[:, i] for i, name in enumerate(header)}
