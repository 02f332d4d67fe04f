"""llem's Hydra launchers: hydra-submitit-launcher's, waiting for every job, killed ones included."""
