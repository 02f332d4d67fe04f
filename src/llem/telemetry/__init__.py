"""GPU telemetry during inference: NVML sampled at 10 Hz, throttle summary, 1 Hz timeseries.parquet."""
