"""Power-cut simulation for the buffer: an LD_PRELOAD write log and a disk model.

``shim.c`` logs every write, truncate, rename, unlink and fsync under one directory;
``model`` rebuilds what a disk would hold after a power cut at that point; ``driver`` is the
workload (the real ``BufferStore``); ``harness`` cuts it at random points and checks.
"""
