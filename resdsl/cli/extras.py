"""What each command needs beyond the core, and the extra of pyproject.toml that installs it.

`pip install resdsl` is the compiler alone (`check`, `compile`, `ir`, `fmt`, `diff`, `graph`,
`summary`): no framework. The commands that run models need more, and each asks for it here
before it does anything else (a run folder, an output file, seconds of loading): where a module
is not installed, one line names it and the extra that brings it, and the command exits 2,
never with a traceback from deep inside an import.

    error: `resdsl train` needs numpy (not installed): pip install 'resdsl[train]'
"""

from __future__ import annotations

import importlib.util
import json
import os

from resdsl.interop.weight_files import refuse

# Import names whose distributions are called otherwise.
DISTRIBUTIONS = {"sklearn": "scikit-learn", "PIL": "pillow", "tensorflow": "tensorflow-cpu"}
# The module each Keras backend (KERAS_BACKEND) imports, and the extra that installs it.
KERAS_BACKENDS = {"tensorflow": ("tensorflow", "keras"), "torch": ("torch", "torch")}


def installed(module: str) -> bool:
    """Whether `module` can be found, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing; a module without a spec
        return False


def require(command: str, extra: str, *modules: str) -> None:
    """Exit 2 with one line where any of `modules` is not installed, naming them all and
    `pip install 'resdsl[EXTRA]'`."""
    missing = [DISTRIBUTIONS.get(m, m) for m in modules if not installed(m)]
    if missing:
        refuse(
            f"`resdsl {command}` needs {' and '.join(missing)} (not installed): "
            f"pip install 'resdsl[{extra}]'"
        )


def keras_backend() -> str:
    """The backend Keras will start with: KERAS_BACKEND, else its configuration file's
    (`$KERAS_HOME/keras.json`, `~/.keras/keras.json`), else TensorFlow, as Keras decides."""
    name = os.environ.get("KERAS_BACKEND")
    if not name:
        home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
        try:
            with open(os.path.join(home, "keras.json"), encoding="utf-8") as handle:
                name = json.load(handle).get("backend")
        except (OSError, ValueError, AttributeError):
            name = None
    return name if isinstance(name, str) and name else "tensorflow"


def require_keras(command: str) -> None:
    """Keras and the backend it will start with (where an extra installs that backend)."""
    require(command, "keras", "keras", "h5py")
    backend = KERAS_BACKENDS.get(keras_backend())
    if backend is not None:
        require(command, backend[1], backend[0])


def require_training(command: str, backend: str, data: str | None, init: bool = False) -> None:
    """What `train` and `compare` import: the framework, NumPy, Pillow (image folders),
    matplotlib (`curves.png`, `compare.png`), scikit-learn for the bundled digits; PyTorch for
    Keras' `--init` (PyTorch weights, ported)."""
    modules = ["numpy", "PIL", "matplotlib", *(["sklearn"] if data == "digits" else [])]
    if backend == "keras":
        require(command, "train", *modules)
        require_keras(command)
        if init:
            require(command, "torch", "torch")
    else:
        require(command, "train", "torch", *modules)
