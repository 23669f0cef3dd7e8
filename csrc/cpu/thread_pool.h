// Internal: edgefer's CPU thread pool (see set_num_threads in edgefer/kernels.h).
#pragma once
#include <cstdint>
#include <functional>

#include "edgefer/kernels.h"

namespace edgefer {
namespace cpu {

// Runs fn(i) for every i in [0, ntasks), spread over the pool's threads and the caller (dynamic scheduling).
// Returns when all tasks are done. Runs everything in the caller when the pool has one thread, when there is one
// task, or when another call is already using the pool. fn may throw: then the tasks not yet started are
// skipped, and the first exception is rethrown here once every task that started has finished.
void parallel_for(int64_t ntasks, const std::function<void(int64_t)>& fn);

// Threads parallel_for uses (the caller included).
int pool_threads();

// parallel_for on a host framework's runner (fn's exceptions handled the same way, never thrown into the
// runner); runner nullptr: edgefer's pool (the function above).
void parallel_for(const ParallelFor* runner, int64_t ntasks, const std::function<void(int64_t)>& fn);

// Threads that parallel_for(runner, ...) spreads tasks over.
int runner_threads(const ParallelFor* runner);

}  // namespace cpu
}  // namespace edgefer
