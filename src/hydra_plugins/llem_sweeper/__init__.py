"""llem's Hydra sweeper: runs a planned study's explicit, ordered list of jobs."""
