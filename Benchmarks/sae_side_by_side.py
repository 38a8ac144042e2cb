#!/usr/bin/env python3
"""One SAE training step, side by side: nanosae (`sae-bench sae`) against EleutherAI's sparsify and
SAELens, on the same shape, the same number of CPU threads and random float32 data.

Each PyTorch step is what its library's trainer does per batch: forward with the loss terms,
backward, Adam, and (sparsify) the decoder-norm projection. Reported: tokens/s, ms per step.
The machine's speed drifts within minutes, so every entry is measured in each of `--rounds` rounds,
one after another, and the table gives the medians over rounds; nanosae's ratios to sparsify are
taken within each round (the same minute), then their median.

Setup (PyTorch is large; the CPU build is enough):
    python3 -m venv /tmp/saevenv
    /tmp/saevenv/bin/pip install sae-lens eai-sparsify
    swift build -c release --product sae-bench
    /tmp/saevenv/bin/python Benchmarks/sae_side_by_side.py --d-in 256 --d-sae 4096 --k 32 --batch 4096

A library that is not installed is skipped.
"""
import argparse
import json
import os
import subprocess
import sys
import time

# sparsify picks a Triton (GPU) decoder whenever Triton is importable; on the CPU use its eager one.
os.environ.setdefault("SPARSIFY_DISABLE_TRITON", "1")


def median_step_seconds(step, steps):
    step()  # warm-up
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def sparsify_step(torch, args, auxk):
    from sparsify import SaeConfig, SparseCoder
    sae = SparseCoder(args.d_in, SaeConfig(num_latents=args.d_sae, k=args.k), device="cpu", dtype=torch.float32)
    opt = torch.optim.Adam(sae.parameters(), lr=1e-4)
    x = torch.randn(args.batch, args.d_in)
    dead = torch.arange(args.d_sae) % 1000 < args.dead_fraction * 1000 if auxk else None

    def step():
        out = sae(x, dead_mask=dead)
        loss = out.fvu + out.auxk_loss / 32
        loss.backward()
        sae.remove_gradient_parallel_to_decoder_directions()
        opt.step()
        opt.zero_grad(set_to_none=False)
        sae.set_decoder_norm_to_unit_norm()
    return step


def saelens_step(torch, args, arch):
    import sae_lens
    from sae_lens.saes.sae import TrainStepInput
    if arch == "topk":
        sae = sae_lens.TopKTrainingSAE(sae_lens.TopKTrainingSAEConfig(d_in=args.d_in, d_sae=args.d_sae, k=args.k))
        coefficients = {}
    else:
        sae = sae_lens.StandardTrainingSAE(sae_lens.StandardTrainingSAEConfig(d_in=args.d_in, d_sae=args.d_sae))
        coefficients = {"l1": 1e-3}
    opt = torch.optim.Adam(sae.parameters(), lr=1e-4)
    x = torch.randn(args.batch, args.d_in)

    def step():
        out = sae.training_forward_pass(TrainStepInput(sae_in=x, coefficients=coefficients, dead_neuron_mask=None,
                                                       n_training_steps=0, is_logging_step=False))
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=False)
    return step


def nanosae(args, arch, dead_fraction):
    exe = args.sae_bench
    cmd = [exe, "sae", "--arch", arch, "--d-in", str(args.d_in), "--d-sae", str(args.d_sae), "--k", str(args.k),
           "--batch", str(args.batch), "--steps", str(args.steps), "--threads", str(args.threads),
           "--dead-fraction", str(dead_fraction), "--json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    return json.loads(out)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--d-in", type=int, default=256)
    p.add_argument("--d-sae", type=int, default=4096)
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dead-fraction", type=float, default=0.1, help="latents marked dead for the AuxK rows")
    p.add_argument("--rounds", type=int, default=3, help="times every entry is measured (medians are shown)")
    p.add_argument("--sae-bench", default=os.path.join(os.path.dirname(__file__), "..", ".build", "release", "sae-bench"))
    args = p.parse_args()

    entries = []          # (name, function returning seconds per step)
    if os.path.exists(args.sae_bench):
        for arch, dead in [("topk", 0.0), ("topk", args.dead_fraction), ("relu", 0.0)]:
            entries.append((f"nanosae {arch}" + (" +AuxK" if dead else ""),
                            lambda arch=arch, dead=dead: nanosae(args, arch, dead)["step_ms"] / 1e3))
    else:
        print(f"(no sae-bench at {args.sae_bench}: build it with swift build -c release)", file=sys.stderr)
    try:
        import torch
        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None
    if torch is not None:
        for name, make in [("sparsify topk", lambda: sparsify_step(torch, args, False)),
                           ("sparsify topk +AuxK", lambda: sparsify_step(torch, args, True)),
                           ("SAELens topk", lambda: saelens_step(torch, args, "topk")),
                           ("SAELens standard (relu)", lambda: saelens_step(torch, args, "relu"))]:
            try:
                step = make()
            except ImportError as e:
                print(f"({name}: not installed: {e})", file=sys.stderr)
                continue
            entries.append((name, lambda step=step: median_step_seconds(step, args.steps)))
    seconds = {name: [] for name, _ in entries}
    for _ in range(args.rounds):
        for name, measure in entries:
            seconds[name].append(measure())

    def median(xs):
        xs = sorted(xs)
        return xs[len(xs) // 2]
    # nanosae / sparsify within each round.
    pairs = {"nanosae topk": "sparsify topk", "nanosae topk +AuxK": "sparsify topk +AuxK"}
    print(f"d_in {args.d_in}, d_sae {args.d_sae}, k {args.k}, batch {args.batch}, {args.threads} threads, "
          f"{args.rounds} rounds (medians)")
    print(f"{'':26} {'tokens/s':>10} {'ms/step':>9}  vs sparsify (per round)")
    for name, _ in entries:
        s = median(seconds[name])
        ratio = ""
        other = pairs.get(name)
        if other in seconds:
            r = [o / m for m, o in zip(seconds[name], seconds[other])]
            ratio = f"  {median(r):.2f}× ({', '.join(f'{x:.2f}' for x in r)})"
        print(f"{name:26} {args.batch / s:10.0f} {s * 1e3:9.1f}{ratio}")


if __name__ == "__main__":
    main()
