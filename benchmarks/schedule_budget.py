"""The step and time budget of default ``qkit train`` as the training set grows (issue 10, item 6).

``--schedule scaled`` (the default) keeps the stated 150 epochs / patience 40 for sets of up to
546 images (BreastMNIST's training set, where they were tuned) and shrinks them as
(546/n)^0.75 beyond, so the number of optimizer steps grows as n^0.25. This script measures,
here, the time of one optimizer step of the default model (small_cnn + dressed quantum head,
batch 32, 28 px, EMA) and of scoring one validation image, then prints for the training-set
sizes of MedMNIST's 28 px sets the epochs, patience, steps and the longest the run can take
(every epoch run, none stopped early) under the scaled schedule and under the old fixed one.
No larger MedMNIST file is needed: the time per step does not depend on the images' content.

    python benchmarks/schedule_budget.py                 # 2 threads, as qkit train on 2 cores
"""

from __future__ import annotations

import argparse
import time

import torch

# (training images, validation images) of the MedMNIST v2 28 px sets.
SETS = {
    "breastmnist": (546, 78),
    "pneumoniamnist": (4708, 524),
    "organamnist": (34561, 6491),
    "pathmnist": (89996, 10004),
}


def seconds_per_step(model, optimizer, batch: int, repeats: int) -> float:
    x, y = torch.rand(batch, 3, 28, 28), torch.randint(0, 2, (batch,))
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    times = []
    for i in range(repeats + 3):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step()
        if i >= 3:
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


@torch.no_grad()
def seconds_per_scored_image(model, batch: int, repeats: int) -> float:
    x = torch.rand(batch, 3, 28, 28)
    model.eval()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(x)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2] / batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from dataclasses import replace

    from qkit.config import TrainConfig
    from qkit.network import build_network
    from qkit.optim import make_optimizer, training_budget

    cfg = TrainConfig()
    torch.manual_seed(0)
    model = build_network(**cfg.model_kwargs(2))
    optimizer = make_optimizer(cfg.optim, model)
    step = seconds_per_step(model, optimizer, cfg.optim.batch_size, args.repeats)
    score = seconds_per_scored_image(model, 256, args.repeats)
    print(
        f"default model, batch {cfg.optim.batch_size}, 28 px, {args.threads} thread(s): "
        f"{step * 1e3:.1f} ms per optimizer step, {score * 1e6:.0f} us per scored image"
    )
    print(
        f"{'set':16}{'train':>8}{'epochs':>8}{'patience':>9}{'steps/ep':>9}{'max steps':>10}"
        f"{'max time':>10}{'fixed 150 ep':>14}"
    )
    for name, (n_train, n_val) in SETS.items():
        scaled = training_budget(cfg.optim, n_train)
        fixed = training_budget(replace(cfg.optim, schedule="fixed"), n_train)

        def longest(b: dict) -> float:
            # every epoch: its steps, plus scoring the plain training set (precise BN) and validation
            return b["max_steps"] * step + b["epochs"] * (n_train + n_val) * score

        print(
            f"{name:16}{n_train:>8,}{scaled['epochs']:>8}{scaled['patience']:>9}{scaled['steps_per_epoch']:>9,}"
            f"{scaled['max_steps']:>10,}{longest(scaled) / 60:>9.1f}m{longest(fixed) / 60:>13.1f}m"
        )


if __name__ == "__main__":
    main()
