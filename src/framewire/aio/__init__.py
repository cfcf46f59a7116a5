"""asyncio layer: moves bytes between transports and the sans-I/O core, runs timers."""
