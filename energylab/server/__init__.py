"""What the dashboard uses to run training in the background: the run manager, a run's handle, the worker process."""
