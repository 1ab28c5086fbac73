"""Run folders on disk: the run record (config.json), the files of a run, measuring and picturing a saved run."""
