"""Where the project is, for tests at any depth under tests/ (count no parents in a test file)."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
