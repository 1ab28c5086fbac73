"""Training: the trainer and its loop, live hyperparameters, schedules, history, samplers, objectives,
regularisers, layerwise training of stacks, data parallelism and checkpoint files."""
