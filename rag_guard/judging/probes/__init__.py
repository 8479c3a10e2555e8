"""Probe files fitted for the model presets (`rag-guard fit-probe`): `<preset>.json`."""
