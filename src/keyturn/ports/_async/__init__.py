"""The I/O ports as coroutines: the source the blocking twins are generated from."""
