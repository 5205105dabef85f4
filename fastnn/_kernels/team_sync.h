/* Ordering the phases of one OpenMP parallel region without sleeping at each.
 *
 * fastnn runs OpenMP with OMP_WAIT_POLICY=PASSIVE (see fastnn/__init__.py): a thread
 * that waits at an OpenMP barrier sleeps at once, and waking it costs 50-100 us on a
 * 2-core virtual machine, on the critical path whenever the sleeper has work after it.
 *
 * A counter (fastnn_counter_t) orders phases instead: each piece of work of a phase
 * counts itself done (fastnn_counter_add), and a thread that needs the whole phase waits
 * (fastnn_counter_wait) only until every piece is done, never for threads that have not
 * arrived yet: the first thread starts the next phase while the others are still waking
 * up. A wait spins up to FASTNN_SPIN_NS, then sleeps on a futex, so a thread held up for
 * longer (descheduled on a busy machine) costs the others no more than the spin.
 *
 * fastnn_team_end ends a region's work: all threads wait for each other on a fresh
 * counter, then the first thread lets the others go ahead by a few microseconds, so that
 * it reaches the region's own closing barrier last and never sleeps there waiting to be
 * woken.
 *
 * Elsewhere than Linux with C11 atomics, a wait is OpenMP's own barrier (every thread of
 * the team calls each wait once).
 */
#ifndef FASTNN_TEAM_SYNC_H
#define FASTNN_TEAM_SYNC_H

#define FASTNN_SPIN_NS 100000L
#define FASTNN_LEAD_NS 3000L

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

static inline long fastnn_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec * 1000000000L + t.tv_nsec;
}

typedef struct {
    atomic_int count;
    atomic_int sleepers;
} fastnn_counter_t;

static inline void fastnn_counter_init(fastnn_counter_t* c) {
    atomic_init(&c->count, 0);
    atomic_init(&c->sleepers, 0);
}

/* Counters are real atomics here (0: the OpenMP barrier stands in, see below). */
#define FASTNN_TEAM_SYNC 1

/* The count before adding one: a counter as the next piece of work to take. */
static inline int fastnn_counter_take(fastnn_counter_t* c) {
    return atomic_fetch_add_explicit(&c->count, 1, memory_order_relaxed);
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
        if (fastnn_now_ns() - start > FASTNN_SPIN_NS)
            break;
    }
    atomic_fetch_add(&c->sleepers, 1);
    while ((seen = atomic_load(&c->count)) < target)  /* returns at once if it moved on */
        syscall(SYS_futex, &c->count, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
    atomic_fetch_sub(&c->sleepers, 1);
}

/* The end of a region's work: every thread counts itself on `arrived` (a fresh counter)
 * and waits for the n threads of the team, then the first thread lets the others go
 * ahead by a few microseconds. */
static void fastnn_team_end(fastnn_counter_t* arrived, int n, int thread) {
    long start;
    fastnn_counter_add(arrived);
    fastnn_counter_wait(arrived, n);
    if (thread == 0 && n > 1) {
        start = fastnn_now_ns();
        while (fastnn_now_ns() - start < FASTNN_LEAD_NS)
            FASTNN_PAUSE();
    }
}

#else

#define FASTNN_TEAM_SYNC 0

typedef struct { int unused; } fastnn_counter_t;

static inline int fastnn_counter_take(fastnn_counter_t* c) { (void)c; return 0; }

static inline void fastnn_counter_init(fastnn_counter_t* c) { c->unused = 0; }

static inline void fastnn_counter_add(fastnn_counter_t* c) { (void)c; }

static inline void fastnn_counter_wait(fastnn_counter_t* c, int target) {
    (void)c; (void)target;
#ifdef _OPENMP
    _Pragma("omp barrier")
#endif
}

static inline void fastnn_team_end(fastnn_counter_t* arrived, int n, int thread) {
    (void)n; (void)thread;
    fastnn_counter_wait(arrived, n);
}

#endif
#endif
