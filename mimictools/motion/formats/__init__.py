"""Motion file formats: MimicKit ``.pkl`` (via a restricted unpickler), DeepMimic ``.txt``, dataset ``.yaml``."""

from __future__ import annotations
