# OpenMP shim: the same source compiles with and without OpenMP.
# Without _OPENMP, the runtime reports a single thread and OpenMP off.

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define FASTNN_OPENMP_ENABLED 1
    /* The threads of the enclosing parallel region wait for each other here. Cython's
       prange inside a `with parallel()` block ends without a barrier (omp for nowait). */
    static inline void fastnn_barrier(void) { _Pragma("omp barrier") }
    #else
    static inline void fastnn_barrier(void) { }
    #define FASTNN_OPENMP_ENABLED 0
    static inline int omp_get_max_threads(void) { return 1; }
    static inline int omp_get_thread_num(void) { return 0; }
    #endif
    """
    bint FASTNN_OPENMP_ENABLED
    int omp_get_max_threads() noexcept nogil
    int omp_get_thread_num() noexcept nogil
    void fastnn_barrier() noexcept nogil
