"""Settings: `base` (development default, read from the environment), `test`, `production`."""
