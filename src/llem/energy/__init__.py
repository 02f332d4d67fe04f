"""Energy measurement: samplers behind one interface, and the result's ``energy`` block."""
