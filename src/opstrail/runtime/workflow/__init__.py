"""The workflow engine: variable pool, templates, conditions, scheduler and run recorder."""
