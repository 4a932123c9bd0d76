"""Pictures: mask PNGs, overlays, panels, galleries and plots."""
