"""Deep Boltzmann machines (Salakhutdinov & Hinton 2009) against brute-force enumeration."""
import pytest
import torch

import energylab as el
from energylab.models import dbm
from energylab.measures import metrics
from test_exact import all_states


def random_dbm(sizes, seed=0, scale=1.0):
    torch.manual_seed(seed)
    model = dbm.DBM(sizes).double()
    with torch.no_grad():
        for c in model.couplings:
            c.W.normal_(0, scale)
        for b in model.biases:
            b.normal_(0, scale)
    return model


def brute_force(model):
    """Energies of every joint configuration and the visible part of each."""
    S = all_states(sum(model.sizes))
    cuts = torch.tensor([0] + model.sizes).cumsum(0).tolist()
    x = [S[:, cuts[l]:cuts[l + 1]] for l in range(len(model.sizes))]
    return model.energy(x), x[0]


@pytest.mark.parametrize("sizes", [[4, 3, 2], [3, 2, 3, 2]])
def test_exact_log_z_and_likelihood_equal_brute_force(sizes):
    model = random_dbm(sizes, seed=len(sizes))
    E, V = brute_force(model)
    log_z = torch.logsumexp(-E, 0).item()
    assert metrics.exact_log_partition(model) == pytest.approx(log_z, abs=1e-9)
    v = all_states(sizes[0])
    expected = torch.stack([torch.logsumexp(-E[(V == row).all(1)], 0) for row in v]) - log_z
    assert torch.allclose(metrics.exact_log_likelihood(model, v, per_example=True), expected, atol=1e-9)
    assert model.W.dtype == torch.float64       # the enumeration worked on a copy


def test_mean_field_fixed_point_is_self_consistent():
    model = random_dbm([6, 5, 4, 3], seed=1, scale=0.5)
    v = all_states(6)[::5]
    mu = model.mean_field(v, max_iter=500, tol=1e-12)
    assert torch.equal(mu[0], v)
    for l in range(1, 4):
        assert torch.allclose(mu[l], torch.sigmoid(model.field(mu, l)), atol=1e-9)
    clamped = model.mean_field(v, clamp={3: torch.ones(len(v), 3, dtype=torch.float64)}, max_iter=500, tol=1e-12)
    assert torch.equal(clamped[3], torch.ones(len(v), 3, dtype=torch.float64))
    assert torch.allclose(clamped[2], torch.sigmoid(model.field(clamped, 2)), atol=1e-9)


def test_pretrained_dbm_variational_bound_is_below_the_exact_likelihood():
    data = el.datasets.load("bars-and-stripes", n_train=300, n_test=100)
    torch.manual_seed(0)
    model = dbm.DBM([9, 6, 4], init_std=0.1)
    before = metrics.exact_log_likelihood(model, data.test)
    el.dbm.pretrain(model, data.train, epochs=30, lr=0.1, generator=torch.Generator().manual_seed(0))
    exact = metrics.exact_log_likelihood(model, data.test, per_example=True)
    bound = model.double().variational_bound(data.test.double()) - metrics.exact_log_partition(model)
    assert bool((bound <= exact + 1e-9).all())
    assert exact.mean().item() > before + 0.1      # pretraining learned something
    assert (exact - bound).mean().item() < 1.0     # and the mean-field posterior is a fair approximation


def test_ais_for_a_small_dbm_matches_exact():
    model = random_dbm([8, 6, 4], seed=3, scale=1.0)
    exact = metrics.exact_log_partition(model)
    result = metrics.ais_log_partition(model, n_chains=200, betas=1000, generator=torch.Generator().manual_seed(0))
    assert abs(result.log_z - exact) < 0.1
    assert abs(result.log_z - exact) <= 3 * result.stderr + 1e-3


def test_clamped_gibbs_samples_the_exact_conditional():
    model = random_dbm([3, 3, 2], seed=4)
    top = torch.tensor([1.0, 0.0], dtype=torch.float64)
    E, V = brute_force(model)
    S = all_states(8)
    keep = (S[:, 6:] == top).all(1)
    p = torch.zeros(8, dtype=torch.float64)
    index = (V[keep] * torch.tensor([4.0, 2.0, 1.0], dtype=torch.float64)).sum(1).long()
    p.index_add_(0, index, torch.softmax(-E[keep], 0))
    g = torch.Generator().manual_seed(0)
    v = model.sample(4000, k=30, clamp={2: top}, generator=g)
    counts = torch.bincount((v * torch.tensor([4.0, 2.0, 1.0], dtype=torch.float64)).sum(1).long(), minlength=8)
    assert 0.5 * (counts / 4000 - p).abs().sum().item() < 0.03


def test_gibbs_from_a_visible_batch_reaches_the_exact_marginal():
    """The RBM-style call gibbs(v, k) (what the Explore page uses): hidden layers restart from a draw
    of q(h | v), and after enough sweeps the visible states follow the DBM's exact p(v)."""
    model = random_dbm([3, 3, 2], seed=5)
    E, V = brute_force(model)
    index = (V * torch.tensor([4.0, 2.0, 1.0], dtype=torch.float64)).sum(1).long()
    p = torch.zeros(8, dtype=torch.float64).index_add_(0, index, torch.softmax(-E, 0))
    g = torch.Generator().manual_seed(1)
    start = torch.zeros(4000, 3, dtype=torch.float64)              # every chain starts at v = 000
    v = model.gibbs(start, k=30, generator=g)
    assert v.shape == (4000, 3) and set(v.unique().tolist()) <= {0.0, 1.0}
    counts = torch.bincount((v * torch.tensor([4.0, 2.0, 1.0], dtype=torch.float64)).sum(1).long(), minlength=8)
    assert 0.5 * (counts / 4000 - p).abs().sum().item() < 0.03


def test_registered_and_trained_by_the_shared_trainer():
    assert "DBM" in el.VARIANTS
    data = el.datasets.load("bars-and-stripes", n_train=200, n_test=50)
    torch.manual_seed(0)
    model = el.make("DBM", n_visible=9, hidden_layers="6,4", init_std=0.1)
    before = metrics.exact_log_likelihood(model, data.train)
    trainer = el.Trainer(model, lr=0.02, momentum=0.9, epochs=60, batch_size=20, k=5, weight_decay=0.0,
                         device="cpu", eval_every=100)
    trainer.fit(data)
    assert metrics.exact_log_likelihood(model, data.train) > before + 0.8
    record = trainer.evaluate()               # the trainer's measurements work on a DBM (exact: tiny model)
    assert record["exact_log_likelihood"] == pytest.approx(metrics.exact_log_likelihood(model, trainer.monitor["binary"]))
    with pytest.raises(ValueError, match="visible layer and at least one hidden layer"):
        dbm.DBM([5])


def test_trainer_measures_exactly_only_what_it_can_enumerate():
    assert el.make("DBM", n_visible=9, hidden_layers="6,4").exact_units == 6      # the smaller side
    big = el.make("DBM", n_visible=9, hidden_layers="30,25")
    assert big.exact_units == 30                   # > exact_max_units: the trainer skips the exact measure
    x = (torch.rand(40, 9, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    record = el.Trainer(big, epochs=1, batch_size=20, device="cpu").fit(x).to_dict()
    assert "exact_log_likelihood" not in str(record)
