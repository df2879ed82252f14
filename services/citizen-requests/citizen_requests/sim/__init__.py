"""Simulated citizens and OPD staff: their behaviour, the command builders, the simulator process."""
