"""The service as coroutines: the source the blocking service is generated from."""
