/* A barrier for the threads of one OpenMP parallel region that spins for a bounded time
 * before it sleeps.
 *
 * fastnn runs OpenMP with OMP_WAIT_POLICY=PASSIVE (see fastnn/__init__.py): a thread
 * that waits at an OpenMP barrier sleeps at once, and waking it costs 50-100 us on a
 * 2-core virtual machine, on the critical path whenever the sleeper has work after the
 * barrier. Inside a region whose threads all have work right after the barrier (the
 * phases of a training step), a short wait is far cheaper spun than slept: this barrier
 * spins up to FASTNN_BARRIER_SPIN_NS, then sleeps on a futex (Linux), so a thread held
 * up for longer (descheduled on a busy machine) costs its partners no more than the spin.
 *
 * fastnn_team_barrier_last(b, n) ends a region: the barrier, after which the first thread
 * lets the others go ahead by a few microseconds, so that it reaches the region's own
 * closing barrier last and never sleeps there waiting to be woken.
 *
 * A counter (fastnn_counter_t) orders phases without a barrier: each piece of work of a
 * phase counts itself done, and a thread waits (spinning, then sleeping, as above) only
 * until all pieces are done, never for threads that have not arrived yet: the first
 * thread starts the next phase while the others are still waking up.
 *
 * Elsewhere than Linux with C11 atomics, the barriers and the waits are OpenMP's own
 * barrier (every thread of the team calls each wait once).
 */
#ifndef FASTNN_TEAM_BARRIER_H
#define FASTNN_TEAM_BARRIER_H

#define FASTNN_BARRIER_SPIN_NS 100000L
#define FASTNN_BARRIER_LEAD_NS 3000L

#if defined(__linux__) && !defined(__STDC_NO_ATOMICS__) && defined(_OPENMP)
#include <limits.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FASTNN_PAUSE() _mm_pause()
#else
#define FASTNN_PAUSE() ((void)0)
#endif

typedef struct {
    atomic_int arrived;
    atomic_int generation;
    atomic_int sleepers;
} fastnn_barrier_t;

static inline void fastnn_barrier_init(fastnn_barrier_t* b) {
    atomic_init(&b->arrived, 0);
    atomic_init(&b->generation, 0);
    atomic_init(&b->sleepers, 0);
}

static inline long fastnn_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec * 1000000000L + t.tv_nsec;
}

/* Wait until all n threads of the team have arrived. */
static void fastnn_team_barrier(fastnn_barrier_t* b, int n) {
    int gen = atomic_load(&b->generation), i;
    long start;
    if (n <= 1)
        return;
    if (atomic_fetch_add(&b->arrived, 1) == n - 1) {  /* the last one lets all go */
        atomic_store(&b->arrived, 0);
        atomic_fetch_add(&b->generation, 1);
        if (atomic_load(&b->sleepers) > 0)
            syscall(SYS_futex, &b->generation, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
        return;
    }
    start = fastnn_now_ns();
    for (;;) {
        for (i = 0; i < 64; i++) {
            if (atomic_load_explicit(&b->generation, memory_order_acquire) != gen)
                return;
            FASTNN_PAUSE();
        }
        if (fastnn_now_ns() - start > FASTNN_BARRIER_SPIN_NS)
            break;
    }
    atomic_fetch_add(&b->sleepers, 1);
    while (atomic_load(&b->generation) == gen)  /* returns at once if it moved on */
        syscall(SYS_futex, &b->generation, FUTEX_WAIT_PRIVATE, gen, NULL, NULL, 0);
    atomic_fetch_sub(&b->sleepers, 1);
}

typedef struct {
    atomic_int count;
    atomic_int sleepers;
} fastnn_counter_t;

static inline void fastnn_counter_init(fastnn_counter_t* c) {
    atomic_init(&c->count, 0);
    atomic_init(&c->sleepers, 0);
}

/* One more piece of work is done. */
static inline void fastnn_counter_add(fastnn_counter_t* c) {
    atomic_fetch_add(&c->count, 1);
    if (atomic_load(&c->sleepers) > 0)
        syscall(SYS_futex, &c->count, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* Wait until `target` pieces are done. */
static void fastnn_counter_wait(fastnn_counter_t* c, int target) {
    long start = fastnn_now_ns();
    int i, seen;
    for (;;) {
        for (i = 0; i < 64; i++) {
            if (atomic_load_explicit(&c->count, memory_order_acquire) >= target)
                return;
            FASTNN_PAUSE();
        }
        if (fastnn_now_ns() - start > FASTNN_BARRIER_SPIN_NS)
            break;
    }
    atomic_fetch_add(&c->sleepers, 1);
    while ((seen = atomic_load(&c->count)) < target)  /* returns at once if it moved on */
        syscall(SYS_futex, &c->count, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
    atomic_fetch_sub(&c->sleepers, 1);
}

static void fastnn_team_barrier_last(fastnn_barrier_t* b, int n, int thread) {
    long start;
    fastnn_team_barrier(b, n);
    if (thread == 0 && n > 1) {
        start = fastnn_now_ns();
        while (fastnn_now_ns() - start < FASTNN_BARRIER_LEAD_NS)
            FASTNN_PAUSE();
    }
}

#else

typedef struct { int unused; } fastnn_barrier_t;

static inline void fastnn_barrier_init(fastnn_barrier_t* b) { b->unused = 0; }

static inline void fastnn_team_barrier(fastnn_barrier_t* b, int n) {
    (void)b; (void)n;
#ifdef _OPENMP
    _Pragma("omp barrier")
#endif
}

static inline void fastnn_team_barrier_last(fastnn_barrier_t* b, int n, int thread) {
    (void)thread;
    fastnn_team_barrier(b, n);
}

typedef struct { int unused; } fastnn_counter_t;

static inline void fastnn_counter_init(fastnn_counter_t* c) { c->unused = 0; }

static inline void fastnn_counter_add(fastnn_counter_t* c) { (void)c; }

static inline void fastnn_counter_wait(fastnn_counter_t* c, int target) {
    (void)c; (void)target;
#ifdef _OPENMP
    _Pragma("omp barrier")
#endif
}

#endif
#endif
