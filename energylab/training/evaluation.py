"""What the trainer measures at each evaluation: the fixed monitor sets and `evaluate`.

`Trainer` (trainer.py) inherits `Measurements`, so these stay `trainer.evaluate()` and
`trainer.monitor`; they live here to keep the training loop's file short (one concept a
file, docs/DESIGN.md). Nothing here runs per batch: `Trainer.fit` calls `_monitor_sets`
once per fit and `evaluate` every `eval_every` steps.

The mixin uses what `Trainer` sets up: `model`, `params`, `device`, `monitor_size`,
`monitor`, `watch`, `sampler`, `last_negative`, `labels`, `step`, `steps_per_epoch`,
`_elapsed`, `exact_max_units`, `dist` and `log`; it sets `pl_method`.
"""
from __future__ import annotations

import torch

from ..measures import metrics


class Measurements:
    """The evaluation half of `Trainer`: monitor sets, one history record per evaluation."""

    def _monitor_sets(self, train, test):
        """Fixed, small subsets measured at every evaluation (fixed so curves compare like with like)."""
        g = torch.Generator(self.device).manual_seed(self.params["seed"] + 1)
        pick = lambda x: x[torch.randperm(x.shape[0], generator=g, device=self.device)[:self.monitor_size]]
        sets = {"train": pick(train), "test": pick(test) if test is not None and len(test) else None}
        # Likelihoods of Bernoulli units are defined on binary states: for [0,1] data use one
        # fixed stochastic binarisation of the monitor set.
        if self.model.visible.discrete:
            sets["binary"] = (torch.rand(sets["train"].shape, generator=g, device=self.device)
                              < sets["train"]).to(sets["train"].dtype)
        return sets

    @torch.no_grad()
    def evaluate(self) -> dict:
        """Measure the model on the monitor sets and append one record to the history."""
        model, mon = self.model, self.monitor
        f_train = model.free_energy(mon["train"]).mean()
        record = {"epoch": self.step / self.steps_per_epoch, "time": self._elapsed,
                  "samples_per_s": self.step * self.params["batch_size"] / max(self._elapsed, 1e-9),
                  "recon_error": metrics.reconstruction_error(model, mon["train"]),
                  "free_energy_data": f_train.item()}
        if getattr(self, "last_negative", None) is not None:
            record["free_energy_model"] = model.free_energy(self.last_negative).mean().item()
            negative = self.last_negative.reshape(self.last_negative.shape[0], -1)
            if negative.shape[1] == mon["train"].shape[1]:
                self.watch["energy_distance"].update(model, mon["train"], negative)
        if isinstance(getattr(model, "W", None), torch.Tensor) and model.W.dim() == 2:
            self.watch["weight_participation"].update(model)
            self.watch["weight_square"].update(model)
        for name, monitor in self.watch.items():     # the metric objects the notebooks use too
            if monitor.count:
                record[name] = monitor.value()
                monitor.reset()
        if mon["test"] is not None:
            record["free_energy_test"] = model.free_energy(mon["test"]).mean().item()
            record["free_energy_gap"] = record["free_energy_test"] - record["free_energy_data"]
        if "binary" in mon:
            # Its own generator: measuring must not shift the training's random stream.
            g = torch.Generator(self.device).manual_seed(self.params["seed"] + 7919 * self.step)
            pl = metrics.pseudo_log_likelihood(model, mon["binary"], generator=g)
            # Exact and estimated PL are different measurements: they get different names.
            record["pseudo_log_likelihood" if pl.method == "exact" else "pseudo_log_likelihood_1bit"] = pl.value
            self.pl_method = pl.method
        if hasattr(self.sampler, "swap_rates"):     # parallel tempering: mean acceptance of neighbour swaps
            record["swap_rate"] = self.sampler.swap_rates.mean().item()
        labels = getattr(self, "labels", None)
        if labels is not None and labels["test"] is not None:
            record["accuracy"] = metrics.accuracy(model, labels["test_x"], labels["test"])
        exact_units = getattr(model, "exact_units", min(model.n_hidden, model.n_visible))   # a DBM says its own
        if exact_units <= self.exact_max_units and model.visible.discrete:
            record["exact_log_likelihood"] = metrics.exact_log_likelihood(
                model, mon["binary"], max_units=self.exact_max_units)
        if self.dist is not None:         # the mean over processes (distributed.py)
            record = self.dist.reduce_record(record)
        return self.log(record)
