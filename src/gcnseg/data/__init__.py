"""Data: dataset layouts (Oxford-IIIT Pet, images/ + masks/), checks, splits, transforms, loaders."""
