"""The core knows no platform SDK: importing every `bot` module loads no slack/discord module."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import bot

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("slack_bolt", "slack_sdk", "discord", "adapters", "aiohttp")


def test_importing_every_core_module_loads_no_platform_sdk() -> None:
    modules = sorted(
        m.name for m in pkgutil.walk_packages(bot.__path__, "bot.") if m.name != "bot.__main__"
    )
    assert "bot.service" in modules and "bot.runtime" in modules and "bot.cli" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "", f"core imported: {out.stdout.strip()}"


def test_no_core_file_imports_an_adapter_or_sdk_at_module_level() -> None:
    offenders = []
    for path in (ROOT / "bot").rglob("*.py"):
        for line in path.read_text().splitlines():
            if line.startswith(("import ", "from ")) and line.split()[1].split(".")[0] in FORBIDDEN:
                offenders.append(f"{path.name}: {line}")
    assert offenders == []
