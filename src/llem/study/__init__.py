"""Studies: study.yaml files expanded into ordered runs of experiments."""
