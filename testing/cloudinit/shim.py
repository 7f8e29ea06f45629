# Runs cloud-init from a source tree on Debian's python3.
#   shim.py cli ARGS...          as the cloud-init command
#   shim.py run SCRIPT ARGS...   a tree's tool (tools/render-cloudcfg)
#   shim.py schema OLD F...      `cloud-init schema -c F` for each F in one
#                                process; OLD=1 uses `devel schema` (<= 22.1).
# Prints one JSON line per file: {"file", "rc", "out"}.
import collections
import collections.abc
import contextlib
import io
import json
import sys

# cloud-init 20.1 uses collections.Iterable and friends (gone in 3.10).
for _n in ("Iterable", "Mapping", "MutableMapping", "Sequence", "Callable", "Set", "MutableSet", "Hashable"):
    if not hasattr(collections, _n):
        setattr(collections, _n, getattr(collections.abc, _n))

if sys.argv[1] == "run":
    import runpy

    sys.argv = sys.argv[2:]
    runpy.run_path(sys.argv[0], run_name="__main__")
    sys.exit(0)

from cloudinit.cmd import main as cimain  # noqa: E402


def run(argv):
    buf = io.StringIO()
    rc = 0
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        try:
            r = cimain.main(argv)
            rc = r if isinstance(r, int) else 0
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return rc, buf.getvalue()


if sys.argv[1] == "cli":
    sys.exit(cimain.main(["cloud-init"] + sys.argv[2:]))
elif sys.argv[1] == "schema":
    old = sys.argv[2] == "1"
    for f in sys.argv[3:]:
        argv = ["cloud-init", "devel", "schema", "--config-file", f] if old else ["cloud-init", "schema", "-c", f]
        rc, out = run(argv)
        print(json.dumps({"file": f, "rc": rc, "out": out}), flush=True)
else:
    sys.exit("usage: shim.py cli|schema ...")
