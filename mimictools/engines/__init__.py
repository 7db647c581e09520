"""engines."""

from __future__ import annotations
