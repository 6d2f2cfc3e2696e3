#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Every shell command of README.md and docs/*.md, checked so that none can rot.

    doc_commands.py REPOSITORY EARLYBERT

Each ```sh block runs in bash from the repository's root, as its reader would run it, with the
commands it names standing in for themselves:

  earlybert (build/release/bin/earlybert, $bin, under mpirun or env)
            the program built by this configuration, with EARLYBERT_CHECK_ONLY=1: the command line is
            parsed and every check that runs before a file is read runs (flags without their method,
            values out of range, methods that exclude each other), and it must pass
  a script  (scripts/*.py, benchmarks/*.py, with or without /usr/bin/python3 in front)
            must exist, be executable, start with #!/usr/bin/python3, compile, know every --flag
            the command gives it (argparse's add_argument of that name), and import nothing that
            scripts/install-deps.sh does not install (every script in scripts/ is checked so too)
  cmake --workflow --preset NAME   the preset must exist in CMakePresets.json
  scripts/install-deps.sh          must exist and be executable (CI runs it)

$DATA, the folder of the full datasets that the pages' commands read (data/README.md), is set to a
path that need not exist: the checks never read an input file. Loops, variables and arrays of a block
work as bash runs them. A block whose first line is
"# not a command" is shown for its form only and is skipped, and says so.
"""
import os
import re
import subprocess
import sys
import tempfile

REPOSITORY, EARLYBERT = sys.argv[1], sys.argv[2]

# The stand-ins, as bash functions; each records what it checked in the file $DOC_RECORD.
PRELUDE = r'''
set -euo pipefail
DATA=/full-datasets
checked() { echo "$*" >> "$DOC_RECORD"; }
earlybert() {
  local out status=0
  out=$(EARLYBERT_CHECK_ONLY=1 EARLYBERT_BLAS_NOTE=never "$EARLYBERT_BINARY" "$@" 2>&1) || status=$?
  if [[ $status -ne 0 ]]; then echo "FAILED: earlybert $*: $out" >&2; exit 1; fi
  checked "earlybert $1"
}
mpirun() {
  while [[ $# -gt 0 && $1 != earlybert ]]; do shift; done
  [[ $# -gt 0 ]] || { echo "FAILED: mpirun without the program" >&2; exit 1; }
  shift
  earlybert "$@"
}
env() {
  while [[ $# -gt 0 && ( $1 == -u || $1 == *=* || $prev == -u ) ]]; do prev=$1; shift; done
  "$@"
}
script() {
  python3 "$DOC_COMMANDS" --script "$@" || exit 1
  checked "script $1"
}
cmake() {
  [[ $1 == --workflow && $2 == --preset ]] || { echo "FAILED: cmake $*: only 'cmake --workflow --preset NAME' is checked" >&2; exit 1; }
  python3 -c 'import json, sys; names = [p["name"] for p in json.load(open("CMakePresets.json"))["workflowPresets"]]; sys.exit(sys.argv[1] not in names)' "$3" \
    || { echo "FAILED: cmake --workflow --preset $3: no such workflow preset" >&2; exit 1; }
  checked "cmake preset $3"
}
installer() {
  [[ -x scripts/install-deps.sh ]] || { echo "FAILED: scripts/install-deps.sh is not executable" >&2; exit 1; }
  checked "install-deps"
}
'''


def stand_ins(block):
    """The block with each command that names a stand-in calling it instead."""
    block = block.replace("build/release/bin/earlybert", "earlybert")
    block = re.sub(r"(/usr/bin/python3 |python3 )?((?:scripts|benchmarks)/[A-Za-z_]+\.py)", r"script \2", block)
    block = block.replace("scripts/install-deps.sh", "installer")
    return block


def check_script(path, args):
    """A script the documentation runs: executable, /usr/bin/python3, compiles, knows its flags."""
    if not os.path.isfile(path):
        sys.exit(f"FAILED: {path}: no such script")
    if not os.access(path, os.X_OK):
        sys.exit(f"FAILED: {path} is not executable")
    with open(path) as f:
        source = f.read()
    if not source.startswith("#!/usr/bin/python3\n"):
        sys.exit(f"FAILED: {path} does not start with #!/usr/bin/python3 (the Python that has its packages)")
    compile(source, path, "exec")
    # What it imports beyond Python's standard library, Debian packages it: scripts/install-deps.sh
    # must install each (matplotlib, scipy, scikit-learn, numpy; torch is for the reference only).
    with open("scripts/install-deps.sh") as f:  # the stand-ins run in the repository
        installer = f.read()
    packages = {"matplotlib": "python3-matplotlib", "scipy": "python3-scipy", "sklearn": "python3-sklearn", "numpy": "python3-numpy"}
    for module in sorted(set(re.findall(r"^\s*(?:import|from) (\w+)", source, re.M)) & set(packages)):
        if not re.search(r"\b" + re.escape(packages[module]) + r"\b", installer):
            sys.exit(f"FAILED: {path} imports {module}, which scripts/install-deps.sh does not install ({packages[module]})")
    for flag in (a.split("=")[0] for a in args if re.fullmatch(r"--[A-Za-z0-9][-A-Za-z0-9_]*(=.*)?", a)):
        if not re.search(r"""add_argument\([^)]*["']""" + re.escape(flag) + r"""["']""", source):
            sys.exit(f"FAILED: {path} has no option {flag}")


def main():
    if sys.argv[1:2] == ["--script"]:
        check_script(sys.argv[2], sys.argv[3:])
        return
    pages = ["README.md"] + sorted("docs/" + p for p in os.listdir(os.path.join(REPOSITORY, "docs")) if p.endswith(".md"))
    failures, commands, skipped = 0, 0, 0
    for page in pages:
        with open(os.path.join(REPOSITORY, page)) as f:
            text = f.read()
        for number, block in enumerate(re.findall(r"```(?:sh|bash)\n(.*?)```", text, re.S), start=1):
            if block.startswith("# not a command"):
                skipped += 1
                print(f"{page} block {number}: shown for its form only, skipped")
                continue
            with tempfile.NamedTemporaryFile("r") as record:
                process = subprocess.run(["bash", "-c", PRELUDE + stand_ins(block)], cwd=REPOSITORY, text=True, capture_output=True,
                                         stdin=subprocess.DEVNULL,
                                         env=dict(os.environ, EARLYBERT_BINARY=EARLYBERT, DOC_COMMANDS=os.path.abspath(__file__),
                                                  DOC_RECORD=record.name))
                lines = record.read().splitlines()
            err = process.stderr
            commands += len(lines)
            if process.returncode != 0 or not lines:
                failures += 1
                print(f"{page} block {number}: FAILED\n{err.strip() or 'no command of the block was checked'}")
            else:
                print(f"{page} block {number}: {len(lines)} command(s) checked: {', '.join(lines)}")
    # Every script, whether or not a page runs it: executable, /usr/bin/python3, its imports installed.
    os.chdir(REPOSITORY)
    for name in sorted(os.listdir("scripts")):
        if name.endswith(".py"):
            check_script(os.path.join("scripts", name), [])
    print(f"{commands} commands checked, {skipped} blocks skipped, {failures} blocks failed; every script in scripts/ checked")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
