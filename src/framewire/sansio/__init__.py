"""The sans-I/O core: bytes in, events and bytes out. No asyncio, sockets, files or clocks."""
