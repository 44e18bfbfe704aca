"""Thread settings on a shared machine: torch's OpenMP wait policy under CPU contention.

``predict_logits`` on MiniLM-L6, timed in a fresh process per setting (the policy is read when
torch's thread pool starts), once on the machine as found (see the load average printed) and
once more next to another torch job (2 threads, default settings, multiplying matrices in a
loop) — as when two engineers' jobs share a 2-core machine:

* ``2 threads, libgomp default`` — threads spin before sleeping; with a core taken they spin
  against the other process;
* ``1 thread``;
* ``2 threads, OMP_WAIT_POLICY=PASSIVE`` — waiting threads sleep at once.

Usage: ``python benchmarks/bench_threads.py [--n 128] [--reps 3]``
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import common

from synapse_lens import ExecOptions

_OTHER_JOB = ("import torch\ntorch.set_num_threads(2)\na = torch.randn(384, 384)\n"
              "while True:\n    a = torch.tanh(a @ a)")
SETTINGS = {  # label -> (threads, OMP_WAIT_POLICY; "" leaves libgomp's default)
    "2 threads, libgomp default": (2, ""),
    "1 thread": (1, ""),
    "2 threads, OMP_WAIT_POLICY=PASSIVE": (2, "PASSIVE"),
}


def child(args: Any) -> None:
    from synapse_lens.activations import predict_logits

    texts, _, labels = common.sms(args.n)
    model = common.load_minilm(args, labels)
    opts = ExecOptions(batch_size=args.batch_size, max_length=args.max_length, progress=False)
    predict_logits(model, texts[:args.batch_size], options=opts)
    times = []
    for _ in range(args.reps):
        start = time.perf_counter()
        predict_logits(model, texts, options=opts)
        times.append(time.perf_counter() - start)
    print(json.dumps({"median": common.median(times)}))


def run(argv: list[str] | None = None) -> dict[str, Any] | None:
    p = common.parser(__doc__.splitlines()[0], n=128, reps=3)
    p.add_argument("--child", action="store_true", help="internal")
    args = p.parse_args(argv)
    if args.device != "cpu":
        print("SKIPPED: the thread benchmark is about CPU threads")
        return None
    if not common.configure(args):
        return None
    if args.child:
        child(args)
        return None
    results: dict[tuple[str, bool], float] = {}
    for contended in (False, True):
        busy = (subprocess.Popen([sys.executable, "-c", _OTHER_JOB],
                                 env={k: v for k, v in os.environ.items()
                                      if k != "OMP_WAIT_POLICY"})
                if contended else None)
        try:
            for label, (threads, policy) in SETTINGS.items():
                cmd = [sys.executable, __file__, "--child", "--n", str(args.n), "--reps",
                       str(args.reps), "--threads", str(threads), "--batch-size",
                       str(args.batch_size), "--max-length", str(args.max_length)]
                env = {**os.environ, "OMP_WAIT_POLICY": policy}
                out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
                results[(label, contended)] = json.loads(out.stdout.strip().splitlines()[-1])[
                    "median"]
        finally:
            if busy is not None:
                busy.kill()
                busy.wait()
    base = results[("2 threads, libgomp default", False)]
    rows = [(label, results[(label, False)], results[(label, False)] / base,
             results[(label, True)], results[(label, True)] / base) for label in SETTINGS]
    print(f"\n## Threads: predict_logits on {args.n} SMS texts, MiniLM-L6, median of {args.reps}")
    print(common.environment(args))
    print(common.markdown(["setting", "as found s", "÷ default as found",
                           "+ other torch job s", "÷ default as found"], rows))
    return {"results": {f"{k[0]} | busy={k[1]}": v for k, v in results.items()}}


if __name__ == "__main__":
    run(sys.argv[1:])
