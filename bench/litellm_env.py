"""Create bench/.venv-litellm with the LiteLLM proxy (never in the project's .venv) and return its Python.

    .venv/bin/python bench/litellm_env.py        # prints the path of the LiteLLM venv's python

`litellm[proxy]==1.109.1` pins `litellm-proxy-extras`, whose pinned release is not always published; that package
only holds the proxy's database migrations, which a proxy without a database never runs. When the extra does not
resolve, the proxy's other requirements are installed one by one from LiteLLM's own metadata, without it.
"""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

VERSION = "1.109.1"
HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-litellm"
_SKIP = ("litellm-proxy-extras", "litellm-enterprise")  # pinned to releases the index may not have


def python() -> Path:
    return VENV / "bin" / "python"


def ready() -> bool:
    if not python().exists():
        return False
    check = "import litellm.proxy.proxy_server"
    return subprocess.run([str(python()), "-c", check], capture_output=True).returncode == 0


def ensure() -> Path:
    if ready():
        return python()
    if not python().exists():
        venv.create(VENV, with_pip=True)
    pip = [str(python()), "-m", "pip", "install", "-q"]
    if subprocess.run([*pip, f"litellm[proxy]=={VERSION}"]).returncode != 0:
        subprocess.run([*pip, f"litellm=={VERSION}"], check=True)
        listing = (
            "from importlib.metadata import requires\n"
            "print('\\n'.join(r.split(';')[0] for r in requires('litellm') if \"extra == 'proxy'\" in r"
            " and 'python_full_version >= ' not in r))"
        )
        wanted = subprocess.run([str(python()), "-c", listing], capture_output=True, text=True, check=True).stdout
        requirements = [r.strip() for r in wanted.splitlines() if r.strip() and not r.startswith(_SKIP)]
        subprocess.run([*pip, *requirements], check=True)
    if not ready():
        raise SystemExit("LiteLLM's proxy does not import in bench/.venv-litellm; see the pip output above")
    return python()


if __name__ == "__main__":
    print(ensure())
    sys.exit(0)
