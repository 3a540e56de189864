"""python_rank — a scripted rank for the Python probe (reclaim_probe).

    python3 python_rank.py SCRIPT

Runs the `call` lines of a conformance transcript (README.md beside this
file) against the process's default probe and prints each call's result on
stdout, exactly as probe_test.c does for the C probe and cpp_rank.cpp for the
C++ probe. A RAISE directive is a raised exception here; it is printed as
"raise TYPE TEXT" with the exception's type name.
"""

import os
import signal
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "harness", "probe", "python"))

from reclaim_probe import probe  # noqa: E402  (after the path is set)


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: python_rank.py SCRIPT\n")
        return 2
    signals = []
    try:
        with open(argv[1], encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        sys.stderr.write("python_rank: %s\n" % e)
        return 2
    for line in lines:
        if not line.startswith("call "):
            continue
        verb, _, rest = line[5:].partition(" ")
        if verb == "hello":
            probe.hello()
        elif verb == "hook":
            probe.hook(rest)
        elif verb == "at":
            entry, _, hook = rest.partition(" ")
            try:
                probe.at(entry, hook)
            except BaseException as e:  # KeyboardInterrupt included: that is a directive too
                print("raise %s %s" % (type(e).__name__, e), flush=True)
            else:
                print("go", flush=True)
        elif verb == "barrier":
            result = probe.barrier(rest)
            print("barrier ok" if result.ok else "barrier abort %s" % result.why, flush=True)
        elif verb == "audit":
            probe.audit(rest)
        elif verb == "event":
            name, _, text = rest.partition(" ")
            probe.event(name, text)
        elif verb == "bye":
            probe.bye(int(rest))
        elif verb == "occurrences":
            entry, _, hook = rest.partition(" ")
            print("occurrences %d" % probe.occurrences(entry, hook), flush=True)
        elif verb == "armed":
            entry, _, point = rest.partition(" ")
            print("armed %d" % int(probe.armed(entry, point)), flush=True)
        elif verb == "active":
            print("active %d" % int(probe.active()), flush=True)
        elif verb == "handle":
            signo = getattr(signal, rest, None)
            if not isinstance(signo, signal.Signals):
                sys.stderr.write("python_rank: unknown signal %r\n" % rest)
                return 2
            signal.signal(signo, lambda s, frame: signals.append(s))
        elif verb == "exit":
            sys.stdout.flush()
            return int(rest)
        else:
            sys.stderr.write("python_rank: unknown call %r\n" % verb)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
