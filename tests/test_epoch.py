"""One epoch's building blocks: exact BatchNorm statistics, the weight EMA, training loaders."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from qkit.config import TrainConfig
from qkit.epoch import ema_decay_at, make_ema, recompute_batchnorm, train_one_epoch
from qkit.models import build_model
from qkit.repro import make_loader
from qkit.train import scored_state


def test_recompute_batchnorm_averages_the_batch_statistics():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, momentum=0.3))
    x = torch.randn(48, 3) * 2 + 1
    net.train()
    net(torch.randn(8, 3))  # stale running statistics
    recompute_batchnorm(net, TensorDataset(torch.cat([x, torch.randn(5, 3)]), torch.zeros(53)), 16, "cpu")
    with torch.no_grad():
        hidden = net[0](x).view(3, 16, 4)  # three full batches; the short fourth is left out
    bn = net[1]
    torch.testing.assert_close(bn.running_mean, hidden.mean((0, 1)), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(bn.running_var, hidden.var(1, unbiased=True).mean(0), rtol=1e-5, atol=1e-6)
    assert bn.momentum == 0.3 and net.training  # settings restored


def test_ema_follows_the_warmed_up_average():
    net = nn.Sequential(nn.Linear(2, 1), nn.BatchNorm1d(1))
    ema = make_ema(net, 0.9)
    expected = None
    for step in range(30):
        with torch.no_grad():
            net[0].weight.fill_(float(step))
            net[1].num_batches_tracked.fill_(step)
        ema.update_parameters(net)
        expected = (
            float(step)
            if expected is None
            else ema_decay_at(0.9, step) * expected + (1 - ema_decay_at(0.9, step)) * step
        )
        assert ema.module[0].weight.flatten()[0].item() == pytest.approx(expected, rel=1e-6)
    assert ema_decay_at(0.9, 0) == pytest.approx(0.1) and ema_decay_at(0.9, 1000) == 0.9
    assert ema.module[1].num_batches_tracked.item() == 29  # counters are copied
    assert make_ema(net, 0.0) is None
    # The step from which a cap binds, as --ema-decay's help and the Training page give it.
    for cap, first in ((0.998, 4490), (0.999, 8990), (0.99, 890)):
        assert ema_decay_at(cap, first - 1) < cap == ema_decay_at(cap, first)


def test_ema_is_updated_by_train_one_epoch():
    torch.manual_seed(0)
    net = nn.Linear(3, 2)
    ema = make_ema(net, 0.5)
    loader = DataLoader(TensorDataset(torch.randn(20, 3), torch.randint(0, 2, (20,))), batch_size=5)
    train_one_epoch(net, loader, nn.CrossEntropyLoss(), torch.optim.SGD(net.parameters(), lr=0.5), "cpu", model_ema=ema)
    assert int(ema.n_averaged) == 4
    assert not torch.equal(ema.module.weight, net.weight)


def test_scored_state_takes_the_head_from_the_ema_when_the_backbone_is_frozen():
    model = build_model(backbone="small_cnn", head="linear")
    ema = make_ema(model.head, 0.99)
    with torch.no_grad():
        ema.module.weight.fill_(0.25)
    state = scored_state(model, model.head, ema)
    assert state.keys() == model.state_dict().keys()
    assert torch.all(state["head.weight"] == 0.25)
    for key, value in model.state_dict().items():
        if key.startswith("backbone."):
            assert torch.equal(state[key], value), key


@pytest.mark.parametrize("n, batch, sizes", [(546, 32, [32] * 17), (64, 32, [32, 32]), (20, 32, [20])])
def test_training_loader_drops_a_short_last_batch(n, batch, sizes):
    data = TensorDataset(torch.zeros(n, 1), torch.zeros(n))
    assert [len(x) for x, _ in make_loader(data, batch, shuffle=True, generator=torch.Generator())] == sizes
    assert sum(len(x) for x, _ in make_loader(data, batch)) == n  # evaluation sees every image


def test_weighted_loss_is_the_dataset_loss_whatever_the_batch_size():
    """With class weights, the loss used to be a mean of per-batch weighted means."""
    from qkit.epoch import evaluate

    torch.manual_seed(0)
    x, y = torch.randn(50, 3), torch.cat([torch.zeros(40), torch.ones(10)]).long()
    net = nn.Linear(3, 2)
    weights = torch.tensor([0.625, 2.5])
    criterion = nn.CrossEntropyLoss(weight=weights)
    with torch.no_grad():
        expected = criterion(net(x), y).item()  # one batch: sum(w_i l_i) / sum(w_i)
    data = TensorDataset(x, y)
    for batch_size in (7, 16, 50):
        _, _, loss = evaluate(net, DataLoader(data, batch_size), "cpu", criterion)
        assert loss == pytest.approx(expected, rel=1e-6), batch_size


def test_a_non_finite_loss_stops_the_epoch_before_the_step():
    from qkit.epoch import NonFiniteLoss

    net = nn.Linear(3, 2)
    with torch.no_grad():
        net.weight[0, 0] = float("inf")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    loader = DataLoader(TensorDataset(torch.randn(8, 3), torch.zeros(8).long()), 4)
    with pytest.raises(NonFiniteLoss) as err:
        train_one_epoch(net, loader, nn.CrossEntropyLoss(), optimizer, "cpu")
    assert err.value.batch == 1
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key]), key  # no step was taken


def test_head_learns_at_scaled_rate():
    from qkit.models import build_model
    from qkit.optim import make_optimizer

    model = build_model(backbone="small_cnn", head="quantum")
    optimizer = make_optimizer(TrainConfig.from_options(lr=2e-3, head_lr_scale=5.0).optim, model)
    by_lr = {group["lr"]: {id(p) for p in group["params"]} for group in optimizer.param_groups}
    assert by_lr[2e-3] == {id(p) for p in model.backbone.parameters()}
    assert by_lr[1e-2] == {id(p) for p in model.head.parameters()}


def test_model_pt_is_labelled_last_when_nothing_improved():
    """If the monitored metric was never defined, model.pt holds the last scored weights and says so."""
    from qkit.train import final_state

    best, last = {"w": torch.ones(1)}, {"w": torch.zeros(1)}
    assert final_state({"best_state": best}, last) == (best, "best")
    assert final_state({"best_state": None}, last) == (last, "last")
