"""Data: dataset layouts, checks, splits, transforms and loaders."""
