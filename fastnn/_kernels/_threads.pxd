# The BLAS on one thread while a kernel runs its products on fastnn's own threads.
cdef void blas_serial_enter() noexcept
cdef void blas_serial_exit() noexcept
