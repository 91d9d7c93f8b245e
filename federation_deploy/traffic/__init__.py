"""Traffic: weights with one writer, shares, the live redirector state, the ramp, publishing."""
