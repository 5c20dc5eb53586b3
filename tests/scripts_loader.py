"""Import a file of ``scripts/`` as a module, for tests of its functions (scripts are not a
package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name: str) -> ModuleType:
    """The module of ``scripts/<name>.py``, executed fresh."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    # registered before it runs, as an import would: dataclasses look their module up there
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
