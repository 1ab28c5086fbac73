"""The benchmarks measure what they claim: the yardstick loop is energylab's CD-1, the data are
MNIST-shaped, and every part of `make bench` that needs no other library runs (on small data)."""
import torch

import energylab as el
from bench import cd1, dbn_epoch, where_time_goes
from bench.common import mnist_like, summary
from bench.run import markdown


def test_mnist_like_data_is_mnist_shaped_in_unit_range_and_reproducible():
    x, source = mnist_like(300, seed=1)
    assert x.shape == (300, 784) and x.dtype == torch.float32
    assert 0 <= x.min() and x.max() <= 1 and x.mean() > 0.02          # digits, not an empty frame
    assert torch.equal(x, mnist_like(300, seed=1)[0]) and not torch.equal(x, mnist_like(300, seed=2)[0])
    assert "digits" in source or "MNIST" in source


def test_the_hand_written_yardstick_computes_energylabs_cd1_update():
    """Same start, same seed, one batch: the same random numbers in the same order, so the same
    samples; the updated parameters agree to float rounding. (Otherwise the speed ratio would
    compare different algorithms.)"""
    x, _ = mnist_like(cd1.BATCH, seed=3)
    model = el.make("RBM", n_visible=784, n_hidden=cd1.N_HIDDEN)
    W, a, b = (p.detach().clone() for p in (model.W, model.a, model.b))
    el.Trainer(model, lr=cd1.LR, momentum=0.0, weight_decay=0.0, k=1, batch_size=cd1.BATCH, epochs=1, seed=0,
               eval_every=10 ** 9, check_every=10 ** 9, monitor_size=16).fit(x)
    cd1.hand_written_cd1(x, W, a, b, torch.Generator().manual_seed(0))
    moved = (model.W.detach() - W).abs().max()
    assert moved < 1e-5, moved
    assert torch.allclose(model.a.detach(), a, atol=1e-6) and torch.allclose(model.b.detach(), b, atol=1e-6)
    initial = el.make("RBM", n_visible=784, n_hidden=cd1.N_HIDDEN).W.detach()
    assert (W - initial).abs().max() > 1e-3                 # the update itself is not negligible


def test_bench_parts_run_and_report(tmp_path):
    x, _ = mnist_like(1024, seed=0)
    floor = cd1.compute_floor(x[:512], reps=1)
    assert floor["floor_s"] == floor["gemm_s"] + floor["rng_s"] > 0
    assert cd1.energylab_epoch(x) > 0 and cd1.hand_written_epoch(x) > 0
    where = where_time_goes.run(x)
    assert set(where["seconds"]) == {"matrix products", "random numbers", "other operators", "outside operators"}
    assert where["seconds"]["matrix products"] > 0 and where["seconds"]["random numbers"] > 0
    dbn = dbn_epoch.measure(x[:512], "32,16", epochs=1, batch_size=128, repeats=1, device=x.device)
    assert dbn["ratio"] > 0 and len(dbn["rbm_s"]) == 2
    epoch = {"energylab": {**summary([0.5, 0.6]), "samples_per_s": 1.0, "x_energylab": 1.0, "x_floor": 1.5}}
    result = {"machine": {"date": "d", "processor": "p", "torch": "t", "threads": 2, "gpu": None},
              "data": "1,024 x 784", "cd1": {"epoch": epoch, "floor": floor, "notes": {"Learnergy 2.0.2": "absent"}},
              "where": where, "dbn": dbn, "other": {"reconstruct": summary([0.1])}}
    table = markdown(result)
    assert "| energylab | 0.550 |" in table and "Learnergy 2.0.2 | — | absent" in table
    assert "matrix products" in table and "ratio" in table
    result["import"] = {"torch": summary([2.0, 2.2]), "energylab": summary([2.2, 2.4]), "ratio": 1.1}
    assert "`import energylab` 2.30 s" in markdown(result) and "ratio 1.10" in markdown(result)
