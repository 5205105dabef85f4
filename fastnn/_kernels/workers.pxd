# The C interface of workers.h (fastnn's own worker threads), for the modules that use
# them: engine.pyx (blocks of rows) and train.pyx (the pieces of a training step).
cdef extern from "workers.h" nogil:
    enum:
        FNW_AVAILABLE
        FNW_OPEN
        FNW_DONE
        FNW_BAD
        FNW_CALLER
    ctypedef struct fnw_owner:
        pass
    ctypedef struct fnw_pool:
        int n_workers
    ctypedef struct fnw_job:
        long blocks
        const char* x
        char* y
        size_t x_block, y_block
        const void* layers
        int n_layers
        long rows, n_in, n_out, part, qpart
        int scan, dbl
    ctypedef void (*fnw_work_fn)(fnw_job* job, void** scratch, size_t* scratch_bytes) noexcept nogil
    fnw_owner* fnw_owner_new()
    void fnw_owner_free(fnw_owner* o)
    void fnw_owner_here(fnw_owner* o)
    fnw_pool* fnw_pool_get(int n_workers)
    fnw_job* fnw_job_new(fnw_owner* owner, long blocks, size_t x_block, size_t y_block,
                         int max_workers, fnw_work_fn work)
    void fnw_release(fnw_job* job)
    int fnw_post(fnw_pool* p, fnw_job* job)
    void fnw_withdraw(fnw_pool* p, fnw_job* job)
    long fnw_take(fnw_job* job)
    int fnw_enter(fnw_job* job)
    void fnw_exit(fnw_job* job)
    void fnw_close(fnw_job* job)
    int fnw_readers(fnw_job* job)
    void fnw_count_taken()
    void fnw_count_redone()
    long fnw_redone()
    void fnw_finish(fnw_job* job, long q, int state)
    void fnw_mark(fnw_job* job, long q, int state)
    int fnw_finished(fnw_job* job)
    void fnw_wait(fnw_job* job, int seen, double seconds)
    int fnw_state(fnw_job* job, long q)
    double fnw_now()
    void fnw_relax()
    long fnw_taken()
    int fnw_closed(fnw_job* job)
    void fnw_count_late()
    long fnw_late()
    void fnw_sleep(double seconds)
