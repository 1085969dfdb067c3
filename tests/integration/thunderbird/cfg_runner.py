"""Run the rendered .cfg in Node.js against a model of Thunderbird's pref API.

Fast and exact checks of the .cfg logic (lists appended, default kept, cleanup) for many
inputs; the same behaviour is then confirmed for the main cases in real Thunderbird.
The model follows omni.ja defaults/autoconfig/prefcalls.js of Thunderbird 153: pref() sets the
user value, defaultPref() the default, lockPref() the default plus a lock, getPref() returns the
user value if there is one, clearPref() drops the user value. AutoConfig skips the first line.
"""

from __future__ import annotations

import json
import shutil
import subprocess

_PROGRAM = r"""
const fs = require("fs"), vm = require("vm");
const [file, env, initial] = [process.argv[1], JSON.parse(process.argv[2]), JSON.parse(process.argv[3])];
const text = fs.readFileSync(file, "utf8");
const body = text.slice(text.search(/\r?\n/) + 1);
const user = Object.assign({}, initial), defaults = {}, locked = {};
const api = {
  getenv: (name) => (name in env ? env[name] : ""),
  pref: (n, v) => { user[n] = v; },
  defaultPref: (n, v) => { defaults[n] = v; },
  lockPref: (n, v) => { defaults[n] = v; locked[n] = true; },
  unlockPref: (n) => { delete locked[n]; },
  getPref: (n) => (n in user ? user[n] : (n in defaults ? defaults[n] : null)),
  clearPref: (n) => { delete user[n]; },
  displayError: (where, message) => { throw new Error(where + ": " + message); },
};
vm.runInNewContext(body, api, {filename: file, timeout: 5000});
process.stdout.write(JSON.stringify({user, defaults, locked: Object.keys(locked).sort()}));
"""


class CfgResult:
    def __init__(self, data):
        self.user = data["user"]
        self.defaults = data["defaults"]
        self.locked = set(data["locked"])

    def value(self, name):
        """What Thunderbird would read: locked -> default, else user value, else default."""
        if name in self.locked:
            return self.defaults.get(name)
        return self.user.get(name, self.defaults.get(name))

    def items(self, name):
        value = self.value(name) or ""
        return [x.strip() for x in value.split(",") if x.strip()]


def run_cfg(cfg_path, login, prefs=None, env=None):
    node = shutil.which("node")
    assert node, "node (package nodejs, tests/apt/thunderbird.txt) is required"
    environment = {"USER": login} if login is not None else {}
    environment.update(env or {})
    proc = subprocess.run([node, "-e", _PROGRAM, str(cfg_path), json.dumps(environment), json.dumps(prefs or {})],
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    return CfgResult(json.loads(proc.stdout))
