// Counts heap allocations of the whole process (the `zebra` executable only), so `zebra bench` can
// show that a steady decode step allocates nothing. See malloc_counter.c.
#ifndef ZEBRA_MALLOC_COUNTER_H
#define ZEBRA_MALLOC_COUNTER_H

/// Calls to malloc, calloc, realloc and the aligned allocators since the process started.
unsigned long long zm_allocation_count(void);

#endif
