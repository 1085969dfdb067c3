"""Stand-in for the pip bootstrap script ansible-test downloads from a host we cannot reach.

ansible-test looks for ~/.ansible/test/cache/get_pip_<version>.py before downloading and runs it
as ``python get_pip.py --disable-pip-version-check pip==X [--no-setuptools] [--no-wheel]``;
ensurepip plus the package index does the same job offline."""

import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", *args])
