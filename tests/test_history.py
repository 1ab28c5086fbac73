"""History: logging, reading, the memory bound, persistence and thread safety."""
import csv
import io
import json
import math
import threading

import pytest

from energylab.training.history import History, evenly_spaced


def test_log_series_names_last():
    h = History()
    h.log(0, recon_error=0.5, epoch=0)
    h.log(10, recon_error=0.4, pseudo_log_likelihood=-80.0)
    h.log(20, recon_error=0.3)
    assert len(h) == 3
    assert h.names() == ["recon_error", "epoch", "pseudo_log_likelihood"]
    assert h.series("recon_error") == ([0, 10, 20], [0.5, 0.4, 0.3])
    assert h.series("pseudo_log_likelihood") == ([10], [-80.0])
    assert h.series("missing") == ([], [])
    assert h.last("pseudo_log_likelihood") == -80.0
    assert h.last() == {"step": 20, "recon_error": 0.3}
    assert h.last("missing") is None
    assert History().last() is None


def test_reads_are_copies():
    h = History()
    h.log(1, a=1.0)
    h.records[0]["a"] = 99.0
    h.last()["a"] = 99.0
    h.change(1, "lr", 0.1, 0.05)
    h.changes[0]["new"] = 7
    assert h.last("a") == 1.0
    assert h.changes[0]["new"] == 0.05


def test_values_become_plain_numbers():
    import torch
    h = History()
    h.log(3, loss=torch.tensor(0.25), epoch=2)
    rec = h.last()
    assert type(rec["loss"]) is float and type(rec["epoch"]) is int


def test_capacity_bound_keeps_first_last_and_order():
    cap = 200
    h = History(capacity=cap)
    for step in range(100 * cap):
        h.log(step, recon_error=1.0 / (step + 1))
        assert len(h) <= cap
    steps = [r["step"] for r in h.records]
    assert steps[0] == 0 and steps[-1] == 100 * cap - 1
    assert all(a < b for a, b in zip(steps, steps[1:]))
    # the newest half is untouched, the old part still spans the whole run
    assert steps[-cap // 2:] == list(range(100 * cap - cap // 2, 100 * cap))
    old = steps[: -cap // 2]
    assert len(old) > cap // 10
    gaps = [b - a for a, b in zip(steps, steps[1:])]
    # resolution only drops with age, and even the oldest stretch is covered
    # evenly (a gap of a few times steps/capacity), not eroded to nothing
    assert all(a >= b for a, b in zip(gaps, gaps[1:]))
    assert max(gaps) <= 8 * (100 * cap) // cap


def test_change_step_records_survive_thinning():
    cap = 100
    h = History(capacity=cap)
    change_steps = {777, 1500, 3001}
    for step in range(50 * cap):
        if step in change_steps:
            h.change(step, "learning_rate", 0.1, 0.05)
        h.log(step, recon_error=0.1)
    # a change between logged steps protects the first record after it
    h.change(5003, "k", 1, 5)
    for step in range(5010, 5010 + 20 * cap, 10):
        h.log(step, recon_error=0.1)
    steps = {r["step"] for r in h.records}
    assert change_steps <= steps
    assert 5010 in steps
    assert len(h) <= cap


def test_many_changes_do_not_break_the_bound():
    h = History(capacity=32, max_changes=500)
    for step in range(3000):
        h.change(step, "lr", step, step + 1)
        h.log(step, x=float(step))
    assert len(h) <= 32 and len(h.changes) == 500
    assert h.records[0]["step"] == 0


def test_round_trip():
    h = History(capacity=50)
    for step in range(500):
        h.log(step, recon_error=step * 0.5, epoch=step // 100)
        if step % 120 == 0:
            h.change(step, "learning_rate", 0.1, 0.1 / (step + 1))
    h.log(500, exact_log_likelihood=float("nan"), free_energy_data=float("-inf"))
    text = h.to_json()
    json.loads(text)  # strict JSON, even with NaN and infinities inside
    back = History.from_json(text)
    assert back.to_dict() == h.to_dict()
    assert back.names() == h.names() and back.changes == h.changes
    assert math.isnan(back.last("exact_log_likelihood"))
    assert back.last("free_energy_data") == -math.inf
    # a restored history goes on thinning within its bound
    for step in range(501, 1000):
        back.log(step, recon_error=0.0)
    assert len(back) <= 50 and back.records[0]["step"] == 0


def test_csv():
    h = History()
    h.log(0, recon_error=0.5)
    h.log(1, free_energy_data=-3.25)
    h.log(2, recon_error=0.25, free_energy_data=-3.0)
    rows = list(csv.reader(io.StringIO(h.to_csv())))
    assert rows[0] == ["step", "recon_error", "free_energy_data"]
    assert len(rows) == 1 + len(h)
    assert rows[1] == ["0", "0.5", ""]
    assert rows[2] == ["1", "", "-3.25"]


def test_downsampled():
    h = History(capacity=5000)
    for step in range(3000):
        extra = {"exact_log_likelihood": -50.0} if step % 300 == 7 else {}
        h.log(step, recon_error=0.1, **extra)
    for k in (2, 10, 97, 500):
        ds = h.downsampled(k)
        assert len(ds) <= k
        assert ds[0]["step"] == 0 and ds[-1]["step"] == 2999
        steps = [r["step"] for r in ds]
        assert steps == sorted(set(steps))
    # a rarely logged metric is not lost to the thinning
    assert sum("exact_log_likelihood" in r for r in h.downsampled(50)) == 10
    assert len(h.downsampled(10_000)) == 3000
    assert evenly_spaced(10, 3) == [0, 4, 9] or evenly_spaced(10, 3) == [0, 5, 9]


def test_thread_safety():
    h = History(capacity=100)
    errors, done, reads = [], threading.Event(), [0]

    def write():
        try:
            for step in range(20_000):
                h.log(step, recon_error=0.1, epoch=step // 1000)
                if step % 997 == 0:
                    h.change(step, "learning_rate", 0.1, 0.05)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
        finally:
            done.set()

    def read():
        try:
            while not done.is_set() or reads[0] < 3:
                reads[0] += 1
                steps, values = h.series("recon_error")
                assert len(steps) == len(values) <= 100
                assert all(a < b for a, b in zip(steps, steps[1:]))
                assert len(h.records) <= 100
                h.downsampled(20)
                h.to_csv()
                h.to_json()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=write), threading.Thread(target=read)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors and reads[0] >= 3
    assert len(h) <= 100 and h.last()["step"] == 19_999


def test_small_capacity_rejected():
    with pytest.raises(ValueError):
        History(capacity=4)
