"""oppy-stream's benchmarks: synthetic archives, stand-in models, and throughput of the engine and its stages."""
