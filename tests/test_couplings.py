"""Couplings (core/couplings.py): `down` is the adjoint of `up`, the energy is the pairing of the
two, the CD statistic is the energy's gradient, and the convolution is the sum it claims to be."""
import pytest
import torch

from energylab.core.couplings import Conv2d, Dense


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def couplings():
    g = torch.Generator().manual_seed(0)
    return {
        "dense": Dense(7, 5, init_std=1.0, generator=g),
        "conv-flat": Conv2d((1, 6, 5), 3, (3, 2), init_std=1.0, generator=g),
        "conv-image": Conv2d((2, 5, 6), 4, (2, 3), init_std=1.0, generator=g, flat_visible=False),
        "conv-1x1": Conv2d((3, 4, 4), 2, (1, 1), init_std=1.0, generator=g),
    }


def pair(x, y):
    """<x, y> per sample, over every non-batch dimension."""
    return (x.reshape(x.shape[0], -1) * y.reshape(y.shape[0], -1)).sum(1)


@pytest.mark.parametrize("name", list(couplings()))
def test_down_is_the_adjoint_of_up_and_the_energy_pairs_them(name):
    c = couplings()[name].double()
    v, h = randn(4, *c.visible_shape, seed=1), randn(4, *c.hidden_shape, seed=2)
    with torch.no_grad():
        up, down = c.up(v), c.down(h)
        assert up.shape == (4, *c.hidden_shape) and down.shape == (4, *c.visible_shape)
        assert torch.allclose(pair(up, h), pair(v, down), atol=1e-10)      # <up(v), h> = <v, down(h)>
        assert torch.allclose(c.energy(v, h), -pair(up, h), atol=1e-10)    # E = -s_v^T W s_h


@pytest.mark.parametrize("name", list(couplings()))
def test_bias_is_added_to_the_field(name):
    c = couplings()[name].double()
    v, h = randn(3, *c.visible_shape, seed=3), randn(3, *c.hidden_shape, seed=4)
    b = randn(c.n_filters, 1, 1, seed=5) if isinstance(c, Conv2d) else randn(*c.hidden_shape, seed=5)
    a = randn(*c.visible_shape, seed=6)
    with torch.no_grad():
        assert torch.allclose(c.up(v, b), c.up(v) + b, atol=1e-12)
        assert torch.allclose(c.down(h, a), c.down(h) + a, atol=1e-12)


def test_dense_fields_are_the_matrix_products():
    c = couplings()["dense"].double()
    v, h = randn(3, 7, seed=7), randn(3, 5, seed=8)
    with torch.no_grad():
        W = c.W
        assert torch.allclose(c.up(v), torch.einsum("bi,ij->bj", v, W))
        assert torch.allclose(c.down(h), torch.einsum("bj,ij->bi", h, W))


def test_conv_up_is_the_valid_cross_correlation_written_out():
    c = couplings()["conv-image"].double()
    v = randn(2, 2, 5, 6, seed=9)
    k, ch, fh, fw = c.W.shape
    H, Wd = 5 - fh + 1, 6 - fw + 1
    expected = torch.zeros(2, k, H, Wd, dtype=torch.float64)
    with torch.no_grad():
        for f in range(k):
            for i in range(H):
                for j in range(Wd):
                    expected[:, f, i, j] = (v[:, :, i:i + fh, j:j + fw] * c.W[f]).flatten(1).sum(1)
        assert torch.allclose(c.up(v), expected, atol=1e-12)
    assert c.hidden_shape == (4, 4, 4)


def test_cd_statistic_is_the_gradient_of_the_mean_energy_difference():
    """-(<s_v s_h^T>_pos - <s_v s_h^T>_neg) = d/dW (mean E(pos) - mean E(neg)), unequal batch sizes."""
    c = couplings()["dense"].double()
    v_pos, h_pos = randn(6, 7, seed=10), randn(6, 5, seed=11)
    v_neg, h_neg = randn(9, 7, seed=12), randn(9, 5, seed=13)
    loss = c.energy(v_pos, h_pos).mean() - c.energy(v_neg, h_neg).mean()
    expected, = torch.autograd.grad(loss, c.W)
    with torch.no_grad():
        assert torch.allclose(c.cd_grad(v_pos, h_pos, v_neg, h_neg), expected, atol=1e-12)


def test_filters_larger_than_the_image_are_refused():
    with pytest.raises(ValueError, match="do not fit images of 4x4"):
        Conv2d((1, 4, 4), 2, (5, 3))
