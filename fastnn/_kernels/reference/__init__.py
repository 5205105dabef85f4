"""Plain numpy twins of every kernel: the reference the tests hold the kernels to."""
