/* fastnn's own worker threads, for the engine's blockwise path (fastnn/_kernels/engine.pyx)
 * and the compiled training step (fastnn/_kernels/train.pyx: `_pooled_step`).
 *
 * An OpenMP parallel region ends only when every thread of its team has arrived: on a busy
 * machine the calling thread waits, at the join, for a thread descheduled in the middle of
 * its block, for up to a time slice (milliseconds). Here the caller never waits for a
 * worker's block. A call is a job of blocks of rows, taken one at a time by whoever is
 * free (the caller and the workers alike, from one counter):
 *
 *   - The caller runs its blocks on its input into its output.
 *   - A worker runs its block on the caller's input into the job's own output buffer and
 *     marks it done (release). Its workers never write into the engine's arrays.
 *   - When no block is left to take, the caller copies the workers' finished blocks into
 *     its output; a block a worker still holds after `patience` the caller computes itself.
 *     Whoever computes a block runs the same code on the same rows, so the result is the
 *     same bits; a late worker's result lands in the job's buffer, which nobody reads.
 *   - Before it returns, the caller closes the job (fnw_close): no worker starts a block of
 *     its input after that. It waits for no worker: a late worker may still run a block
 *     on the input, so the engine keeps the job and its input alive until the job has no
 *     reader left (fnw_readers); the rows the worker reads may have changed by then, but
 *     its result is not read.
 *   - The job is reference-counted: the caller and each worker that joined hold a reference,
 *     and the last one frees it, then releases the job's owner (the plan), whose
 *     destruction waits until no job of its own is left (`fnw_owner_free`).
 *
 * A training step (train.pyx) uses the pool differently: its pieces write in place (the
 * layers' buffers, the weights, the optimizer's state), so none can be run twice. The
 * caller returns only when every piece is done, and so waits for a piece a worker took and
 * was descheduled in; what it never waits for is a worker that has not taken a piece yet
 * (it takes none once the caller has closed the job, and touches only the job's memory).
 * Such jobs have no owner (NULL): nothing but the job itself outlives the call.
 *
 * A worker runs a job in its caller's floating-point mode (MXCSR on x86: flushing of
 * subnormals, rounding), so its blocks have the bits the caller's would have.
 *
 * Workers wait on a condition variable when there is no job, on Linux after spinning up
 * to 30 us for the next one unless they were preempted lately (`fnw_linger`: a spinning
 * thread takes the core of the busy process it shares it with). A worker that joins a job
 * on its caller's CPU moves to another (`fnw_unpack`, Linux). The pool is per extension
 * module (the engine's and the trainer's each have their own):
 * a fork's child starts with none (pthread_atfork) and makes its own when first needed.
 * Where C11 atomics or POSIX threads are missing, FNW_AVAILABLE is 0 and the engine runs
 * its OpenMP path.
 */
#ifndef FASTNN_WORKERS_H
#define FASTNN_WORKERS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "subnormal.h"

#if !defined(_WIN32) && defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L \
    && !defined(__STDC_NO_ATOMICS__)
#define FNW_AVAILABLE 1
#else
#define FNW_AVAILABLE 0
#endif

/* Block states */
#define FNW_OPEN 0   /* not finished (not taken, or taken and running) */
#define FNW_DONE 1   /* finished by a worker: its result is in the job's output buffer */
#define FNW_BAD 2    /* finished by a worker: its rows hold a NaN or an infinity */
#define FNW_CALLER 3 /* taken by the caller */

#define FNW_MAX_WORKERS 64
/* A worker that finished a job waits for the next one spinning this long (seconds), then
 * sleeps (`fnw_main`), unless it was preempted in the last FNW_CONTENDED seconds. */
#define FNW_LINGER 30e-6
#define FNW_CONTENDED 0.1

#if FNW_AVAILABLE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__) && defined(__has_include)
#if __has_include(<linux/futex.h>)
#include <linux/futex.h>
#include <sys/syscall.h>
#define FNW_FUTEX 1
#endif
#endif
#ifndef FNW_FUTEX
#define FNW_FUTEX 0
#endif
#if defined(__linux__)
#include <sched.h>
#include <sys/resource.h>
#endif
#if defined(__linux__) && defined(CPU_SETSIZE)
#define FNW_UNPACK 1  /* sched_getcpu and CPU sets (glibc with _GNU_SOURCE, which Python sets) */
#else
#define FNW_UNPACK 0
#endif

typedef struct fnw_job fnw_job;
typedef void (*fnw_work_fn)(fnw_job* job, void** scratch, size_t* scratch_bytes);

/* What a job's blocks run on: kept alive by its owner until every job is released. */
typedef struct {
    atomic_long jobs;     /* jobs not yet freed */
    unsigned long forks;  /* fnw_forks when the jobs were counted */
} fnw_owner;

struct fnw_job {
    atomic_int refs;
    atomic_int joined;        /* workers that took the job */
    int max_workers;          /* the call's thread count less one */
    fnw_work_fn work;         /* run by each worker that joins */
    fnw_owner* owner;
    unsigned int float_mode;  /* the caller's, taken on by the workers (subnormal.h) */
    int caller_cpu;           /* the CPU the caller made the job on, or -1 */
    atomic_long next;         /* the next block to take */
    atomic_int readers;       /* workers running a block on the caller's input */
    atomic_int closed;        /* set by fnw_close */
    atomic_int finished;      /* blocks the workers finished (a futex word) */
    atomic_int waiting;       /* the caller sleeps in fnw_wait */
    long blocks;
    _Atomic unsigned char* state;   /* per block: FNW_OPEN, FNW_DONE, FNW_BAD or FNW_CALLER */
    const char* x;            /* the caller's input, x_block bytes a row */
    char* y;                  /* workers' results, y_block bytes apart */
    size_t x_block, y_block;
    /* The engine's own fields (read by its work function). */
    const void* layers;
    int n_layers;
    long rows, n_in, n_out, part, qpart;
    int scan, dbl;
};

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    fnw_job* posted;          /* the job on offer, or NULL */
    atomic_ulong seq;         /* incremented by every post (under mu) */
    int n_workers;
} fnw_pool;

static fnw_pool* fnw_the_pool = NULL;
static unsigned long fnw_forks = 0;  /* forks this process is the child of (since the pool) */
static atomic_long fnw_blocks_taken = 0;  /* by workers, ever (for tests) */
static atomic_long fnw_blocks_redone = 0;  /* by callers, of late workers, ever (for tests) */
static atomic_long fnw_late_joins = 0;  /* jobs workers joined after their close (for tests) */
static int fnw_atfork_set = 0;

static inline fnw_owner* fnw_owner_new(void) {
    fnw_owner* o = (fnw_owner*)malloc(sizeof(fnw_owner));
    if (o != NULL) {
        atomic_init(&o->jobs, 0);
        o->forks = fnw_forks;
    }
    return o;
}

/* Before the owner's first job in this process: in a fork's child, the jobs counted are
 * the parent's, which no worker here will release. Call with the GIL held. */
static inline void fnw_owner_here(fnw_owner* o) {
    if (o->forks != fnw_forks) {
        atomic_store_explicit(&o->jobs, 0, memory_order_relaxed);
        o->forks = fnw_forks;
    }
}

/* Frees the owner once no job of its own is left (a worker finishing a late block holds
 * one for the time of that block); jobs of a parent process are not waited for. */
static inline void fnw_owner_free(fnw_owner* o) {
    struct timespec nap = {0, 20000};
    if (o == NULL)
        return;
    if (o->forks == fnw_forks)
        while (atomic_load_explicit(&o->jobs, memory_order_acquire) != 0)
            nanosleep(&nap, NULL);
    free(o);
}

static inline void fnw_release(fnw_job* job) {
    fnw_owner* o;
    if (atomic_fetch_sub_explicit(&job->refs, 1, memory_order_acq_rel) != 1)
        return;
    o = job->owner;
    free(job);
    if (o != NULL)
        atomic_fetch_sub_explicit(&o->jobs, 1, memory_order_release);
}

/* A job of `blocks` blocks, of x_block bytes per row of input and y_block bytes of output
 * per block (room for the workers' results); the caller holds its one reference. NULL
 * when out of memory. */
static inline fnw_job* fnw_job_new(fnw_owner* owner, long blocks, size_t x_block,
                                   size_t y_block, int max_workers, fnw_work_fn work) {
    size_t head = (sizeof(fnw_job) + 63) / 64 * 64;
    size_t states = ((size_t)blocks + 63) / 64 * 64;
    size_t yb = (y_block + 63) / 64 * 64;
    char* mem;
    fnw_job* job;
    long q;
    if (blocks <= 0 || blocks >= 0x7fffffffL)
        return NULL;
    mem = (char*)aligned_alloc(64, head + states + (size_t)blocks * yb);
    if (mem == NULL)
        return NULL;
    job = (fnw_job*)mem;
    atomic_init(&job->refs, 1);
    atomic_init(&job->joined, 0);
    job->max_workers = max_workers;
    job->work = work;
    job->owner = owner;
    job->float_mode = fastnn_float_mode();
#if FNW_UNPACK
    job->caller_cpu = sched_getcpu();
#else
    job->caller_cpu = -1;
#endif
    atomic_init(&job->next, 0);
    atomic_init(&job->readers, 0);
    atomic_init(&job->closed, 0);
    atomic_init(&job->finished, 0);
    atomic_init(&job->waiting, 0);
    job->blocks = blocks;
    job->state = (_Atomic unsigned char*)(mem + head);
    for (q = 0; q < blocks; q++)
        atomic_init(&job->state[q], FNW_OPEN);
    job->x = NULL;
    job->y = mem + head + states;
    job->x_block = x_block;
    job->y_block = yb;
    if (owner != NULL)
        atomic_fetch_add_explicit(&owner->jobs, 1, memory_order_relaxed);
    return job;
}

/* The next block to run, or -1 when none is left. */
static inline long fnw_take(fnw_job* job) {
    long q;
    if (atomic_load_explicit(&job->next, memory_order_relaxed) >= job->blocks)
        return -1;
    q = atomic_fetch_add_explicit(&job->next, 1, memory_order_relaxed);
    return q < job->blocks ? q : -1;
}

/* A worker may read the caller's input until fnw_exit; 0 when the job is closed. The
 * reader is counted before `closed` is read, and fnw_close sets `closed` before the
 * readers are counted (all sequentially consistent): a worker either sees the job closed
 * or is counted by a later fnw_readers. */
static inline int fnw_enter(fnw_job* job) {
    atomic_fetch_add_explicit(&job->readers, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&job->closed, memory_order_seq_cst)) {
        atomic_fetch_sub_explicit(&job->readers, 1, memory_order_release);
        return 0;
    }
    return 1;
}

static inline void fnw_exit(fnw_job* job) {
    atomic_fetch_sub_explicit(&job->readers, 1, memory_order_release);
}

/* The caller's last act on a job: from here on no worker starts reading its input. */
static inline void fnw_close(fnw_job* job) {
    atomic_store_explicit(&job->closed, 1, memory_order_seq_cst);
}

/* Whether the caller closed the job (a worker that joins later has nothing to do). */
static inline int fnw_closed(fnw_job* job) {
    return atomic_load_explicit(&job->closed, memory_order_acquire);
}

/* Workers reading the job's input now (after fnw_close, 0: read no more). */
static inline int fnw_readers(fnw_job* job) {
    return atomic_load_explicit(&job->readers, memory_order_seq_cst);
}

/* A block a worker took (for tests: _blocks_taken_by_workers). */
static inline void fnw_count_taken(void) {
    atomic_fetch_add_explicit(&fnw_blocks_taken, 1, memory_order_relaxed);
}

/* A block of a late worker that the caller computed (for tests: _blocks_redone_by_callers). */
static inline void fnw_count_redone(void) {
    atomic_fetch_add_explicit(&fnw_blocks_redone, 1, memory_order_relaxed);
}

/* Block q's state set by the caller (FNW_CALLER): no one waits for it. */
static inline void fnw_mark(fnw_job* job, long q, int state) {
    atomic_store_explicit(&job->state[q], (unsigned char)state, memory_order_relaxed);
}

/* A worker finished block q: its state, and the caller woken if it sleeps in fnw_wait. */
static inline void fnw_finish(fnw_job* job, long q, int state) {
    atomic_store_explicit(&job->state[q], (unsigned char)state, memory_order_release);
    atomic_fetch_add_explicit(&job->finished, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&job->waiting, memory_order_seq_cst)) {
#if FNW_FUTEX
        syscall(SYS_futex, (int*)&job->finished, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
#endif
    }
}

static inline int fnw_finished(fnw_job* job) {
    return atomic_load_explicit(&job->finished, memory_order_seq_cst);
}

/* The caller sleeps until a worker finishes a block after fnw_finished returned `seen`,
 * or for `seconds` at most (less where futexes are missing: then it naps and looks). */
static inline void fnw_wait(fnw_job* job, int seen, double seconds) {
    struct timespec t;
    if (seconds > 20e-6 && !FNW_FUTEX)
        seconds = 20e-6;
    t.tv_sec = (time_t)seconds;
    t.tv_nsec = (long)((seconds - (double)t.tv_sec) * 1e9);
    atomic_store_explicit(&job->waiting, 1, memory_order_seq_cst);
#if FNW_FUTEX
    syscall(SYS_futex, (int*)&job->finished, FUTEX_WAIT_PRIVATE, seen, &t, NULL, 0);
#else
    if (atomic_load_explicit(&job->finished, memory_order_seq_cst) == seen)
        nanosleep(&t, NULL);
#endif
    atomic_store_explicit(&job->waiting, 0, memory_order_relaxed);
}

static inline int fnw_state(fnw_job* job, long q) {
    return atomic_load_explicit(&job->state[q], memory_order_acquire);
}

/* A worker joins a job at most max_workers times. */
static inline int fnw_join(fnw_job* job) {
    return atomic_fetch_add_explicit(&job->joined, 1, memory_order_relaxed) < job->max_workers;
}

static inline void fnw_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* A worker that joins a job on the CPU its caller runs on moves to another CPU it may run
 * on. A guest kernel may put a thread that sleeps between jobs on the CPU of the thread
 * that wakes it (seen on a 2-vCPU KVM guest: 784-256-128-10 training steps on two threads
 * took as long as on one, the two threads taking turns on one vCPU); two threads on one
 * CPU take turns instead of running side by side. The affinity is set back at once: the
 * worker stays where it moved until the scheduler moves it again. */
static inline void fnw_unpack(int caller_cpu) {
#if FNW_UNPACK
    cpu_set_t allowed, others;
    if (caller_cpu < 0 || sched_getcpu() != caller_cpu)
        return;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0)
        return;
    others = allowed;
    CPU_CLR(caller_cpu, &others);
    if (CPU_COUNT(&others) == 0)
        return;
    if (sched_setaffinity(0, sizeof others, &others) == 0)
        sched_setaffinity(0, sizeof allowed, &allowed);
#else
    (void)caller_cpu;
#endif
}

static inline double fnw_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The calling thread's involuntary context switches so far (it was preempted: another
 * thread wanted its CPU), or -1 where they are not counted. */
static inline long fnw_preemptions(void) {
#if defined(RUSAGE_THREAD)
    struct rusage ru;
    if (getrusage(RUSAGE_THREAD, &ru) == 0)
        return ru.ru_nivcsw;
#endif
    return -1;
}

/* Between jobs a worker spins up to FNW_LINGER before it sleeps, so that the next step
 * of a training loop (or the next predict) finds it awake: a sleeping worker's vCPU halts,
 * and waking it again took long enough on a 2-vCPU KVM guest that 784-256-128-10 training
 * steps on two threads took 0.56-0.58 ms against 0.46-0.51 with the spin. A worker that
 * was preempted in the last FNW_CONTENDED shares its CPU with a busy thread, and sleeps
 * at once: there its spin only used up its share of the CPU (an epoch under a busy core
 * took 1.74-1.87x its quiet time with a spin after every job, 1.27-1.28x without one, and
 * 1.11-1.32x with this rule). */
static inline void fnw_linger(fnw_pool* p, unsigned long seen, long* preemptions,
                              double* preempted_at) {
    double now = fnw_now(), start = now;
    long count = fnw_preemptions();
    if (count < 0)
        return;
    if (count != *preemptions) {
        *preemptions = count;
        *preempted_at = now;
    }
    if (now - *preempted_at < FNW_CONTENDED)
        return;
    while (atomic_load_explicit(&p->seq, memory_order_acquire) == seen
           && now - start < FNW_LINGER) {
        fnw_relax();
        now = fnw_now();
    }
}

static void* fnw_main(void* arg) {
    fnw_pool* p = (fnw_pool*)arg;
    unsigned long seen = 0;
    void* scratch = NULL;
    size_t scratch_bytes = 0;
    fnw_job* job;
    long preemptions = fnw_preemptions();
    double preempted_at = fnw_now() - FNW_CONTENDED;
    for (;;) {
        fnw_linger(p, seen, &preemptions, &preempted_at);
        pthread_mutex_lock(&p->mu);
        while (p->posted == NULL || atomic_load_explicit(&p->seq, memory_order_relaxed) == seen)
            pthread_cond_wait(&p->cv, &p->mu);
        job = p->posted;
        seen = atomic_load_explicit(&p->seq, memory_order_relaxed);
        atomic_fetch_add_explicit(&job->refs, 1, memory_order_relaxed);
        pthread_mutex_unlock(&p->mu);
        if (fnw_join(job)) {
            fnw_unpack(job->caller_cpu);
            fastnn_set_float_mode(job->float_mode);
            job->work(job, &scratch, &scratch_bytes);
        }
        fnw_release(job);
    }
    return NULL;
}

static void fnw_forget_pool(void) {
    fnw_the_pool = NULL;  /* the child of a fork: the parent's workers are not here */
    fnw_forks++;
}

/* The pool with at least n_workers workers (created or grown), or NULL when not even one
 * could be started. Call with the GIL held: that orders the calls. */
static inline fnw_pool* fnw_pool_get(int n_workers) {
    fnw_pool* p = fnw_the_pool;
    pthread_attr_t attr;
    pthread_t thread;
    sigset_t all, old;
    if (n_workers > FNW_MAX_WORKERS)
        n_workers = FNW_MAX_WORKERS;
    if (p != NULL && p->n_workers >= n_workers)
        return p;
    if (!fnw_atfork_set) {
        if (pthread_atfork(NULL, NULL, fnw_forget_pool) != 0)
            return NULL;
        fnw_atfork_set = 1;
    }
    if (p == NULL) {
        p = (fnw_pool*)calloc(1, sizeof(fnw_pool));
        if (p == NULL)
            return NULL;
        if (pthread_mutex_init(&p->mu, NULL) != 0) {
            free(p);
            return NULL;
        }
        if (pthread_cond_init(&p->cv, NULL) != 0) {
            pthread_mutex_destroy(&p->mu);
            free(p);
            return NULL;
        }
        fnw_the_pool = p;
    }
    /* Workers take no signals (Python handles them on its main thread) and are detached:
     * they live as long as the process. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_mutex_lock(&p->mu);
    while (p->n_workers < n_workers && pthread_create(&thread, &attr, fnw_main, p) == 0)
        p->n_workers++;
    pthread_mutex_unlock(&p->mu);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return p->n_workers > 0 ? p : NULL;
}

/* Offers the job to the workers; 0 when another call's job is on offer (then the caller
 * runs its own way and the workers stay with the other). */
static inline int fnw_post(fnw_pool* p, fnw_job* job) {
    int posted = 0;
    pthread_mutex_lock(&p->mu);
    if (p->posted == NULL) {
        atomic_fetch_add_explicit(&job->refs, 1, memory_order_relaxed);
        p->posted = job;
        atomic_fetch_add_explicit(&p->seq, 1, memory_order_release);
        posted = 1;
        pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return posted;
}

/* Takes the job off offer (workers that took it keep their references). */
static inline void fnw_withdraw(fnw_pool* p, fnw_job* job) {
    int mine = 0;
    pthread_mutex_lock(&p->mu);
    if (p->posted == job) {
        p->posted = NULL;
        mine = 1;
    }
    pthread_mutex_unlock(&p->mu);
    if (mine)
        fnw_release(job);
}

static inline long fnw_taken(void) {
    return atomic_load_explicit(&fnw_blocks_taken, memory_order_relaxed);
}

static inline long fnw_redone(void) {
    return atomic_load_explicit(&fnw_blocks_redone, memory_order_relaxed);
}

/* A worker joined a job its caller had closed (for tests). */
static inline void fnw_count_late(void) {
    atomic_fetch_add_explicit(&fnw_late_joins, 1, memory_order_relaxed);
}

static inline long fnw_late(void) {
    return atomic_load_explicit(&fnw_late_joins, memory_order_relaxed);
}

static inline void fnw_sleep(double seconds) {
    struct timespec t;
    t.tv_sec = (time_t)seconds;
    t.tv_nsec = (long)((seconds - (double)t.tv_sec) * 1e9);
    nanosleep(&t, NULL);
}


#else  /* no workers: the engine runs its OpenMP path */

typedef struct fnw_job {
    const char* x;
    char* y;
    size_t x_block, y_block;
    const void* layers;
    int n_layers;
    long blocks;
    long rows, n_in, n_out, part, qpart;
    int scan, dbl;
} fnw_job;
typedef struct { int unused; } fnw_owner;
typedef struct { int n_workers; } fnw_pool;
typedef void (*fnw_work_fn)(fnw_job* job, void** scratch, size_t* scratch_bytes);
static inline fnw_owner* fnw_owner_new(void) { return NULL; }
static inline void fnw_owner_free(fnw_owner* o) { (void)o; }
static inline void fnw_owner_here(fnw_owner* o) { (void)o; }
static inline fnw_pool* fnw_pool_get(int n) { (void)n; return NULL; }
static inline fnw_job* fnw_job_new(fnw_owner* o, long b, size_t xb, size_t yb, int m,
                                   fnw_work_fn w) {
    (void)o; (void)b; (void)xb; (void)yb; (void)m; (void)w; return NULL;
}
static inline void fnw_release(fnw_job* j) { (void)j; }
static inline int fnw_post(fnw_pool* p, fnw_job* j) { (void)p; (void)j; return 0; }
static inline void fnw_withdraw(fnw_pool* p, fnw_job* j) { (void)p; (void)j; }
static inline long fnw_take(fnw_job* j) { (void)j; return -1; }
static inline int fnw_enter(fnw_job* j) { (void)j; return 0; }
static inline void fnw_exit(fnw_job* j) { (void)j; }
static inline void fnw_close(fnw_job* j) { (void)j; }
static inline int fnw_readers(fnw_job* j) { (void)j; return 0; }
static inline int fnw_closed(fnw_job* j) { (void)j; return 1; }
static inline void fnw_count_taken(void) {}
static inline void fnw_count_redone(void) {}
static inline long fnw_redone(void) { return 0; }
static inline void fnw_count_late(void) {}
static inline long fnw_late(void) { return 0; }
static inline void fnw_finish(fnw_job* j, long q, int s) { (void)j; (void)q; (void)s; }
static inline void fnw_mark(fnw_job* j, long q, int s) { (void)j; (void)q; (void)s; }
static inline int fnw_finished(fnw_job* j) { (void)j; return 0; }
static inline void fnw_wait(fnw_job* j, int seen, double s) { (void)j; (void)seen; (void)s; }
static inline int fnw_state(fnw_job* j, long q) { (void)j; (void)q; return FNW_OPEN; }
static inline double fnw_now(void) { return 0.0; }
static inline long fnw_taken(void) { return 0; }
static inline void fnw_relax(void) {}
static inline void fnw_sleep(double s) { (void)s; }

#endif
#endif
